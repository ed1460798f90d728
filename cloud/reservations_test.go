package cloud

import (
	"slices"
	"strings"
	"testing"

	"github.com/joinery-dev/joinery/api/v1alpha1"
)

// Reserved offerings follow Karpenter's AWS provider
// (ReservedCapacityResolver): one per active reservation, in its zone, at
// the on-demand price / 10,000,000, available while it has room.
func TestRegionOfferingsOfferActiveReservations(t *testing.T) {
	base := synthetic(t)
	c := base.WithCapacityReservations("r1", []CapacityReservation{
		{ID: "cr-a1", InstanceType: "a.large", Region: "r1", ZoneID: "r1-az2", Type: v1alpha1.CapacityReservationTypeDefault, Total: 3, Available: 2, State: "active"},
		{ID: "cr-full", InstanceType: "b.large", Region: "r1", ZoneID: "r1-az2", Type: v1alpha1.CapacityReservationTypeBlock, Total: 1, Available: 0, State: "active"},
		{ID: "cr-gone", InstanceType: "a.large", Region: "r1", ZoneID: "r1-az1", Total: 1, Available: 1, State: "expired"},
		{ID: "cr-e", InstanceType: "e.large", Region: "r1", ZoneID: "r1-az1", Total: 1, Available: 1, State: "active"},
	})
	offerings, err := c.RegionOfferings("r1", WithZones("r1b", "r1a"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ito := range offerings {
		for _, o := range ito.Offerings {
			if o.CapacityType != v1alpha1.CapacityTypeReserved {
				continue
			}
			line := o.InstanceType + " " + o.Zone + " " + o.Reservation.ID
			if !o.Available {
				line += " (full)"
			}
			got = append(got, line)
			if want := ReservedPrice(map[string]float64{"a.large": 1, "b.large": 2, "e.large": 3}[o.InstanceType]); o.PricePerHour != want || want <= 0 || want > 1e-6 {
				t.Errorf("%s priced %g, want %g", line, o.PricePerHour, want)
			}
			if l := o.Labels(); l[v1alpha1.LabelCapacityReservationID] != o.Reservation.ID || l[v1alpha1.LabelCapacityType] != "reserved" {
				t.Errorf("%s labels %v", line, l)
			}
		}
	}
	// e.large has no other offering (no offerings.csv row) yet its
	// reservation makes it launchable; an expired one offers nothing.
	want := []string{"a.large r1b cr-a1", "b.large r1b cr-full (full)", "e.large r1a cr-e"}
	if !slices.Equal(got, want) {
		t.Errorf("reserved offerings:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	// The catalog it came from is unchanged, and an update keeps them.
	if len(base.CapacityReservations("r1")) != 0 {
		t.Error("WithCapacityReservations changed the catalog it was called on")
	}
	updated, err := c.Update(RegionUpdate{Region: "r1", SpotPrices: []ZoneSpotPrice{{ZoneID: "r1-az1", InstanceType: "a.large", USDPerHour: 0.3}}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(updated.CapacityReservations("r1")); n != 4 {
		t.Errorf("an update of spot prices left %d reservations, want 4", n)
	}
}

func TestSelectorTermsSelectAsKarpentersDo(t *testing.T) {
	r := &CapacityReservation{ID: "cr-1", OwnerID: "111111111111", Tags: map[string]string{"team": "ml", "env": "prod"}}
	for _, tc := range []struct {
		rule string
		term v1alpha1.CapacityReservationSelectorTerm
		want bool
	}{
		{"its id", v1alpha1.CapacityReservationSelectorTerm{ID: "cr-1"}, true},
		{"another id", v1alpha1.CapacityReservationSelectorTerm{ID: "cr-2"}, false},
		{"all its tags", v1alpha1.CapacityReservationSelectorTerm{Tags: map[string]string{"team": "ml", "env": "prod"}}, true},
		{"a wildcard value", v1alpha1.CapacityReservationSelectorTerm{Tags: map[string]string{"env": "*"}}, true},
		{"a tag it lacks", v1alpha1.CapacityReservationSelectorTerm{Tags: map[string]string{"team": "ml", "cost": "*"}}, false},
		{"another value", v1alpha1.CapacityReservationSelectorTerm{Tags: map[string]string{"team": "web"}}, false},
		{"tags of its owner", v1alpha1.CapacityReservationSelectorTerm{Tags: map[string]string{"team": "ml"}, OwnerID: "111111111111"}, true},
		{"tags of another owner", v1alpha1.CapacityReservationSelectorTerm{Tags: map[string]string{"team": "ml"}, OwnerID: "222222222222"}, false},
		{"an empty term", v1alpha1.CapacityReservationSelectorTerm{}, false},
	} {
		if got := Selects(tc.term, r); got != tc.want {
			t.Errorf("%s: Selects = %v, want %v", tc.rule, got, tc.want)
		}
	}
}
