package disruption

import (
	"github.com/joinery-dev/joinery/internal/capacitybuffer"
)

// withoutHeadroom drops from the empty candidates those whose
// CapacityBuffer headroom is needed (capacitybuffer.KeepForHeadroom); the
// nodes kept say why, which joinery explain shows.
func (r *round) withoutHeadroom(empty []*Candidate) ([]*Candidate, error) {
	if len(empty) == 0 || len(r.st.Headroom) == 0 {
		return empty, nil
	}
	snap, err := r.st.Snapshot(r.Provisioner.Unavailable().At(r.now))
	if err != nil {
		return nil, err
	}
	names := make([]string, len(empty))
	for i, c := range empty {
		names[i] = c.Node.Name
	}
	_, kept, err := capacitybuffer.KeepForHeadroom(snap, r.st.Headroom, names)
	if err != nil {
		return nil, err
	}
	var out []*Candidate
	for _, c := range empty {
		if why, ok := kept[c.Node.Name]; ok {
			r.keep(c, why)
			continue
		}
		out = append(out, c)
	}
	return out, nil
}
