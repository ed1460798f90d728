package cloud

import (
	"fmt"
	"maps"
)

// PlacementScore is EC2's spot placement score (GetSpotPlacementScores)
// of an instance type in one Availability Zone: 1 (a spot request is
// unlikely to be filled) to 10 (highly likely). EC2 scores a request, a set
// of types, per zone; each type of the set gets the set's score (see
// cloud/live for how types are grouped).
type PlacementScore struct {
	Region       string
	ZoneID       string
	InstanceType string
	Score        int
}

type scoreKey struct{ zoneID, instanceType string }

// WithPlacementScores returns the catalog with a region's spot placement
// scores replaced by scores; the spot offerings RegionOfferings returns
// carry them. An offering without a score has PlacementScore 0: unknown,
// which is not a low score. The catalog itself is not changed.
func (c *Catalog) WithPlacementScores(region string, scores []PlacementScore) (*Catalog, error) {
	byKey := make(map[scoreKey]int, len(scores))
	for _, s := range scores {
		if s.Region != region {
			return nil, fmt.Errorf("placement score of %s in %s is for region %q, not %s", s.InstanceType, s.ZoneID, s.Region, region)
		}
		if s.Score < 1 || s.Score > 10 {
			return nil, fmt.Errorf("placement score of %s in %s is %d; EC2 scores from 1 to 10", s.InstanceType, s.ZoneID, s.Score)
		}
		byKey[scoreKey{s.ZoneID, s.InstanceType}] = s.Score
	}
	out := *c
	out.scores = maps.Clone(c.scores)
	if out.scores == nil {
		out.scores = map[string]map[scoreKey]int{}
	}
	out.scores[region] = byKey
	return &out, nil
}

// PlacementScoreOf returns the spot placement score of a type in a zone,
// 0 when unknown.
func (c *Catalog) PlacementScoreOf(region, zoneID, instanceType string) int {
	return c.scores[region][scoreKey{zoneID, instanceType}]
}
