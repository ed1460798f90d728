package cloudsim

import (
	"encoding/xml"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// GetSpotPlacementScores, on EC2's wire protocol.
//
// EC2 scores a request (a set of instance types and a target capacity) per
// Region or, with SingleAvailabilityZone=true, per Availability Zone, from
// 1 to 10, assuming the capacity-optimized strategy across the set. The
// simulator's rule: a zone's score is the highest score any type of the
// set offered there has (SetPlacementScore; 10 when never set, the
// simulator's capacity being plentiful), and a Region's is its best zone's.
// As EC2's documentation says, fewer than three distinct types always score
// low; "low" has no number there, the simulator answers 1.
//
// Honoured: InstanceType.N, TargetCapacity (required, 1 to 2,000,000,000;
// the score does not depend on it here), SingleAvailabilityZone,
// RegionName.N (a request naming other Regions only gets none), MaxResults
// (10 to 1000) and NextToken. TargetCapacityUnitType is accepted and
// ignored. InstanceRequirementsWithMetadata (EC2 choosing the types from
// attributes) is refused with an error saying so, rather than scored on a
// guess.

// DefaultPlacementScore is the score of a type in a zone SetPlacementScore
// never set.
const DefaultPlacementScore = 10

// SetPlacementScore sets the spot placement score (1..10) of a type in a
// zone (by ID).
func (e *EC2) SetPlacementScore(instanceType, zoneID string, score int) {
	if score < 1 || score > 10 {
		panic(fmt.Sprintf("cloudsim: placement score %d of %s in %s: EC2 scores from 1 to 10", score, instanceType, zoneID))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.scores == nil {
		e.scores = map[ec2SpotKey]int{}
	}
	e.scores[ec2SpotKey{instanceType, zoneID}] = score
}

type ec2PlacementScoresResponse struct {
	XMLName   xml.Name                `xml:"GetSpotPlacementScoresResponse"`
	Namespace string                  `xml:"xmlns,attr"`
	RequestID string                  `xml:"requestId"`
	Scores    []ec2PlacementScoreItem `xml:"spotPlacementScoreSet>item"`
	NextToken string                  `xml:"nextToken,omitempty"`
}

type ec2PlacementScoreItem struct {
	Region string `xml:"region"`
	ZoneID string `xml:"availabilityZoneId,omitempty"`
	Score  int    `xml:"score"`
}

// minPlacementScoreTypes is how many distinct types a request needs for a
// score that is not always low.
const minPlacementScoreTypes = 3

// getSpotPlacementScores answers GetSpotPlacementScores; mu held.
func (e *EC2) getSpotPlacementScores(in ec2Input, requestID string) (any, *ec2APIError) {
	for key := range in.values {
		if strings.HasPrefix(key, "InstanceRequirementsWithMetadata.") {
			return nil, errEC2InvalidParameterValue("InstanceRequirementsWithMetadata: the simulated EC2 scores InstanceType.N only; name the instance types")
		}
	}
	capacity := in.get("TargetCapacity")
	if capacity == "" {
		return nil, errMissing("TargetCapacity")
	}
	if n, err := strconv.ParseInt(capacity, 10, 64); err != nil || n < 1 || n > 2_000_000_000 {
		return nil, errEC2InvalidParameterValue("Value (%s) for parameter TargetCapacity is invalid. Expecting a value between 1 and 2000000000.", capacity)
	}
	types := slices.Compact(slices.Sorted(slices.Values(in.list("InstanceType"))))
	if len(types) == 0 {
		return nil, errEC2InvalidParameterValue("Either InstanceType or InstanceRequirementsWithMetadata must be specified.")
	}
	if len(types) > 1000 {
		return nil, errEC2InvalidParameterValue("InstanceType: at most 1000 instance types; got %d", len(types))
	}
	for _, t := range types {
		if _, ok := e.types[t]; !ok {
			return nil, errEC2InvalidParameterValue("The instance type '%s' does not exist", t)
		}
	}
	out := ec2PlacementScoresResponse{Namespace: ec2Namespace, RequestID: requestID}
	if regions := in.list("RegionName"); len(regions) > 0 && !slices.Contains(regions, e.region) {
		return out, nil
	}
	var items []ec2PlacementScoreItem
	best := 0
	for _, z := range e.zones {
		score := 0
		for _, t := range types {
			if !e.offered[z.ID][t] {
				continue
			}
			s, ok := e.scores[ec2SpotKey{t, z.ID}]
			if !ok {
				s = DefaultPlacementScore
			}
			score = max(score, s)
		}
		if score == 0 {
			continue // no type of the set in this zone
		}
		if len(types) < minPlacementScoreTypes {
			score = 1
		}
		best = max(best, score)
		items = append(items, ec2PlacementScoreItem{Region: e.region, ZoneID: z.ID, Score: score})
	}
	if in.get("SingleAvailabilityZone") != "true" {
		items = nil
		if best > 0 {
			items = []ec2PlacementScoreItem{{Region: e.region, Score: best}}
		}
	}
	// Best first, as EC2 lists its top scores; the key pages them.
	key := func(it ec2PlacementScoreItem) string {
		return fmt.Sprintf("%02d\x00%s", 10-it.Score, it.ZoneID)
	}
	sort.SliceStable(items, func(i, j int) bool { return key(items[i]) < key(items[j]) })
	page, next, apiErr := page(in, items, key, 10, 1000)
	if apiErr != nil {
		return nil, apiErr
	}
	out.Scores, out.NextToken = page, next
	return out, nil
}
