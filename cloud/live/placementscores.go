package live

import (
	"context"
	"fmt"
	stdmaps "maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/joinery-dev/joinery/cloud"
)

// PlacementScoresAPI is GetSpotPlacementScores; *ec2.Client has it. The
// refresher reads scores from region clients that have it.
type PlacementScoresAPI interface {
	ec2.GetSpotPlacementScoresAPIClient
}

// How Joinery asks EC2 for spot placement scores, within the API's limits
// (EC2 API reference, GetSpotPlacementScores; EC2 User Guide, "Spot
// placement score"):
//
//   - EC2 scores a request, a set of types, per zone, not each type: a
//     type's own score would take one request per type, and a request of
//     fewer than three types "always" scores low. So Joinery asks once per
//     instance family with at least three spot types in the region (at
//     most 1000 types a request), and gives each type of the family the
//     family's score in each zone: how deep that family's spot capacity is
//     there. Families of one or two spot types stay unscored (unknown, not
//     low).
//   - EC2 limits how many new request configurations an account makes in
//     24 hours. The families, the target capacity and the region are the
//     same from one refresh to the next, so after the first refresh every
//     request repeats a configuration already used.
//   - The target capacity is limited by the account's recent spot usage;
//     placementScoreTarget is a few instances, what a pool's burst asks for,
//     not a fleet's worth.
const (
	placementScoreMinTypes = 3
	placementScoreMaxTypes = 1000
	placementScoreTarget   = 5
)

// readPlacementScores returns the spot placement score of every type in
// every zone its family is scored in. types are the region's types with a
// spot price.
func readPlacementScores(ctx context.Context, api PlacementScoresAPI, region string, types []string) ([]cloud.PlacementScore, error) {
	byFamily := map[string][]string{}
	for _, t := range types {
		family, _, ok := strings.Cut(t, ".")
		if ok {
			byFamily[family] = append(byFamily[family], t)
		}
	}
	var scores []cloud.PlacementScore
	for _, family := range slices.Sorted(stdmaps.Keys(byFamily)) {
		members := slices.Compact(slices.Sorted(slices.Values(byFamily[family])))
		if len(members) < placementScoreMinTypes {
			continue
		}
		for chunk := range slices.Chunk(members, placementScoreMaxTypes) {
			pages := ec2.NewGetSpotPlacementScoresPaginator(api, &ec2.GetSpotPlacementScoresInput{
				InstanceTypes:          chunk,
				TargetCapacity:         aws.Int32(placementScoreTarget),
				SingleAvailabilityZone: aws.Bool(true),
				RegionNames:            []string{region},
			})
			for pages.HasMorePages() {
				page, err := pages.NextPage(ctx)
				if err != nil {
					return nil, fmt.Errorf("GetSpotPlacementScores for the %s family: %w", family, err)
				}
				for _, s := range page.SpotPlacementScores {
					zoneID, score := aws.ToString(s.AvailabilityZoneId), int(aws.ToInt32(s.Score))
					if zoneID == "" || score < 1 || score > 10 || (s.Region != nil && *s.Region != region) {
						continue
					}
					for _, t := range chunk {
						scores = append(scores, cloud.PlacementScore{Region: region, ZoneID: zoneID, InstanceType: t, Score: score})
					}
				}
			}
		}
	}
	return scores, nil
}

// readScores reads the region's placement scores into next; on failure
// next keeps the last ones (none at first: every score unknown).
func (r *Refresher) readScores(ctx context.Context, api PlacementScoresAPI, region string, next *regionData, count func(data, result string)) {
	var types []string
	for _, p := range next.spot {
		types = append(types, p.InstanceType)
	}
	scores, err := readPlacementScores(ctx, api, region, types)
	if err != nil {
		count(dataPlacementScores, "error")
		if ctx.Err() == nil {
			r.log.Error(err, "reading spot placement scores failed; spot offerings keep their last scores (unknown until a read succeeds), which only weigh spot choices (does the IAM policy allow ec2:GetSpotPlacementScores?)",
				"region", region)
		}
		return
	}
	next.scores = scores
	count(dataPlacementScores, "success")
}
