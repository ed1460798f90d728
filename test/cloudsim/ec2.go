package cloudsim

import (
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/joinery-dev/joinery/cloud"
)

// EC2 is a local Amazon EC2 endpoint for what Joinery's catalog reads:
// an HTTP server speaking EC2's query protocol exactly as aws-sdk-go-v2's
// service/ec2 client sends it (POST /, form-encoded
// Action=...&Version=2016-11-15, lists as Name.N, filters as
// Filter.N.Name / Filter.N.Value.M) and answering with EC2's XML shapes
// (namespace http://ec2.amazonaws.com/doc/2016-11-15/), NextToken
// pagination and error documents. Requests are not authenticated.
//
// Actions: DescribeAvailabilityZones, DescribeInstanceTypes,
// DescribeInstanceTypeOfferings, DescribeSpotPriceHistory and
// GetSpotPlacementScores (placementscores.go); a Cloud adds
// the actions of instances, images and their network (see compute.go).
// Tests change what it answers while it runs: AddInstanceType, AddOffering,
// RemoveOffering, SetSpotPrice, RemoveSpotPrice, FailWith and Throttle to
// make calls fail.
type EC2 struct {
	localEndpoint

	region string
	now    func() time.Time

	mu      sync.Mutex
	zones   []EC2Zone                     // sorted by zone ID
	types   map[string]cloud.InstanceType // by name
	offered map[string]map[string]bool    // zone ID -> type -> offered
	spot    map[ec2SpotKey][]ec2SpotPoint // oldest first
	scores  map[ec2SpotKey]int            // spot placement scores (placementscores.go)
	faults  map[string]*ec2APIError       // action ("" for every one) -> error
	calls   map[string]int                // action -> requests answered
	// throttled counts, per action ("" for every one), the calls still to
	// be refused with RequestLimitExceeded.
	throttled map[string]int

	// compute answers the actions of instances and their network (see
	// Cloud); nil on a bare endpoint. It runs with mu held, so it may read
	// types, zones and spot without locking.
	compute func(action string, in ec2Input, requestID string) (out any, err *ec2APIError, ok bool)
	log     logr.Logger
}

// EC2Zone is an Availability Zone as DescribeAvailabilityZones names it.
type EC2Zone struct {
	ID   string // use1-az1
	Name string // us-east-1a
}

type ec2SpotKey struct{ instanceType, zoneID string }

type ec2SpotPoint struct {
	usd float64
	at  time.Time
}

// ec2Namespace is the XML namespace of every EC2 response.
const ec2Namespace = "http://ec2.amazonaws.com/doc/2016-11-15/"

// spotProduct is the only product description spot prices are kept for.
const spotProduct = "Linux/UNIX"

// NewEC2 returns a stopped endpoint for region with the given zones and
// nothing else; Start serves it.
func NewEC2(region string, zones ...EC2Zone) *EC2 {
	e := &EC2{
		region: region, now: time.Now,
		types: map[string]cloud.InstanceType{}, offered: map[string]map[string]bool{},
		spot: map[ec2SpotKey][]ec2SpotPoint{}, faults: map[string]*ec2APIError{}, calls: map[string]int{},
		throttled: map[string]int{}, log: logr.Discard(),
	}
	for _, z := range zones {
		e.AddZone(z)
	}
	return e
}

// NewEC2FromCatalog returns a stopped endpoint answering what the catalog
// says of region: its zones (under the catalog's names for them), the types
// it offers there, the offerings, and a spot price in every offered zone of
// each type with a spot sample, at the sample's highest price (what the
// catalog charges for spot in every zone), set an hour ago.
func NewEC2FromCatalog(c *cloud.Catalog, region string) (*EC2, error) {
	names := c.ZoneNames(region)
	if names == nil {
		return nil, fmt.Errorf("simulated EC2: the catalog has no offerings in %s", region)
	}
	e := NewEC2(region)
	for id, name := range names {
		e.AddZone(EC2Zone{ID: id, Name: name})
	}
	setAt := e.now().Add(-time.Hour)
	for _, o := range c.Tables().Offerings {
		if o.Region != region {
			continue
		}
		if _, ok := e.types[o.InstanceType]; !ok {
			it, _ := c.InstanceType(o.InstanceType)
			e.types[it.Name] = it
		}
		e.offer(o.InstanceType, o.ZoneID, true)
		if p, ok := c.SpotPrice(region, o.InstanceType); ok {
			k := ec2SpotKey{o.InstanceType, o.ZoneID}
			e.spot[k] = []ec2SpotPoint{{usd: p.MaxUSDPerHour, at: setAt}}
		}
	}
	return e, nil
}

// renameZones gives the endpoint's zones the names of an account whose
// mapping is names (zone ID -> name); nil keeps them. Every zone must be
// named, each differently, as in a real account.
func (e *EC2) renameZones(names map[string]string) error {
	if names == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	ids := make([]string, len(e.zones))
	for i, z := range e.zones {
		ids[i] = z.ID
	}
	for id := range names {
		if !slices.Contains(ids, id) {
			return fmt.Errorf("zone ID %s is not a zone of %s; its zones are %s", id, e.region, strings.Join(ids, ", "))
		}
	}
	owner := map[string]string{}
	for i, z := range e.zones {
		name := names[z.ID]
		if name == "" {
			return fmt.Errorf("zone ID %s of %s has no name; name every zone (%s)", z.ID, e.region, strings.Join(ids, ", "))
		}
		if other, dup := owner[name]; dup {
			return fmt.Errorf("zone IDs %s and %s are both named %s; each zone needs its own name", other, z.ID, name)
		}
		owner[name] = z.ID
		e.zones[i].Name = name
	}
	return nil
}

// Start serves the endpoint on addr ("127.0.0.1:0" when empty: a free
// port on loopback).
func (e *EC2) Start(addr string) error { return e.localEndpoint.start("EC2", addr, e) }

// Region is the region the endpoint answers for.
func (e *EC2) Region() string { return e.region }

// AddZone adds (or renames) an Availability Zone.
func (e *EC2) AddZone(z EC2Zone) {
	e.mu.Lock()
	defer e.mu.Unlock()
	i := slices.IndexFunc(e.zones, func(x EC2Zone) bool { return x.ID == z.ID })
	if i >= 0 {
		e.zones[i] = z
		return
	}
	e.zones = append(e.zones, z)
	sort.Slice(e.zones, func(i, j int) bool { return e.zones[i].ID < e.zones[j].ID })
}

// Zones are the endpoint's Availability Zones, by zone ID.
func (e *EC2) Zones() []EC2Zone {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.zones)
}

// AddInstanceType adds (or replaces) a type DescribeInstanceTypes
// describes; AddOffering offers it in a zone.
func (e *EC2) AddInstanceType(it cloud.InstanceType) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.types[it.Name] = it
}

// AddOffering offers a type in a zone (by zone ID).
func (e *EC2) AddOffering(instanceType, zoneID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.offer(instanceType, zoneID, true)
}

// RemoveOffering stops offering a type in a zone, as when EC2 retires a
// type from an Availability Zone. Its spot price there goes too.
func (e *EC2) RemoveOffering(instanceType, zoneID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.offer(instanceType, zoneID, false)
	delete(e.spot, ec2SpotKey{instanceType, zoneID})
}

func (e *EC2) offer(instanceType, zoneID string, offered bool) {
	if e.offered[zoneID] == nil {
		e.offered[zoneID] = map[string]bool{}
	}
	if offered {
		e.offered[zoneID][instanceType] = true
	} else {
		delete(e.offered[zoneID], instanceType)
	}
}

// SetSpotPrice records a new spot price of a type in a zone (by zone ID),
// in effect from now: the older records stay in the history.
func (e *EC2) SetSpotPrice(instanceType, zoneID string, usdPerHour float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := ec2SpotKey{instanceType, zoneID}
	at := e.now()
	if points := e.spot[k]; len(points) > 0 && !at.After(points[len(points)-1].at) {
		at = points[len(points)-1].at.Add(time.Millisecond) // keep the history strictly ordered
	}
	e.spot[k] = append(e.spot[k], ec2SpotPoint{usd: usdPerHour, at: at})
}

// RemoveSpotPrice forgets every spot price of a type in a zone.
func (e *EC2) RemoveSpotPrice(instanceType, zoneID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.spot, ec2SpotKey{instanceType, zoneID})
}

// FailWith makes every call of action ("" for all) fail with an EC2 error
// code and HTTP status, e.g. ("", "RequestLimitExceeded", 503) or
// ("DescribeSpotPriceHistory", "UnauthorizedOperation", 403). An empty
// code clears the fault.
func (e *EC2) FailWith(action, code string, status int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if code == "" {
		delete(e.faults, action)
		return
	}
	e.faults[action] = &ec2APIError{status: status, code: code, message: "simulated fault: " + code}
}

// Throttle makes the next n calls of action ("" for every action) fail
// with RequestLimitExceeded (HTTP 503), as EC2 throttles an account's API
// requests. n <= 0 clears it.
func (e *EC2) Throttle(action string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if n <= 0 {
		delete(e.throttled, action)
		return
	}
	e.throttled[action] = n
}

// Calls counts the requests of an action answered so far (including
// errors), so tests can see pagination happen.
func (e *EC2) Calls(action string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls[action]
}

// The wire protocol.

// ec2APIError is an EC2 error response: the HTTP status and EC2's error code.
type ec2APIError struct {
	status  int
	code    string
	message string
}

func (e *ec2APIError) Error() string { return e.code + ": " + e.message }

func errEC2InvalidParameterValue(format string, args ...any) *ec2APIError {
	return &ec2APIError{400, "InvalidParameterValue", fmt.Sprintf(format, args...)}
}

// zoneIDLocked is zoneID for callers outside a request.
func (e *EC2) zoneIDLocked(name string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.zoneID(name)
}

// zoneID is the ID of the zone named name ("" if none); mu held.
func (e *EC2) zoneID(name string) string {
	for _, z := range e.zones {
		if z.Name == name {
			return z.ID
		}
	}
	return ""
}

// currentSpotPrice is the spot price in effect now for a type in a zone
// (by ID); mu held.
func (e *EC2) currentSpotPrice(instanceType, zoneID string) (float64, bool) {
	points := e.spot[ec2SpotKey{instanceType, zoneID}]
	now := e.now()
	for i := len(points) - 1; i >= 0; i-- {
		if !points[i].at.After(now) {
			return points[i].usd, true
		}
	}
	return 0, false
}

// ServeHTTP answers one EC2 API call.
func (e *EC2) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := newUUID()
	if r.Method != http.MethodPost {
		writeEC2Error(w, requestID, &ec2APIError{405, "UnsupportedProtocol", "EC2's query protocol takes POST requests here; got " + r.Method})
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		writeEC2Error(w, requestID, &ec2APIError{400, "InvalidParameterValue", fmt.Sprintf("Content-Type %q: EC2's query protocol expects application/x-www-form-urlencoded", ct)})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		writeEC2Error(w, requestID, &ec2APIError{400, "MalformedQueryString", err.Error()})
		return
	}
	form := r.PostForm
	action := form.Get("Action")
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls[action]++
	fault := e.faults[action]
	if fault == nil {
		fault = e.faults[""]
	}
	var out any
	var apiErr *ec2APIError
	switch {
	case action == "":
		apiErr = &ec2APIError{400, "MissingAction", "The request must contain the parameter Action."}
	case form.Get("Version") != "2016-11-15":
		apiErr = &ec2APIError{400, "InvalidParameterValue", fmt.Sprintf("Version %q: the simulated EC2 speaks 2016-11-15", form.Get("Version"))}
	case fault != nil:
		apiErr = fault
	case e.throttle(action):
		apiErr = &ec2APIError{503, "RequestLimitExceeded", "Request limit exceeded."}
	case form.Get("DryRun") == "true":
		apiErr = &ec2APIError{412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set."}
	default:
		in := ec2Request(form)
		switch action {
		case "DescribeAvailabilityZones":
			out, apiErr = e.describeAvailabilityZones(in, requestID)
		case "DescribeInstanceTypes":
			out, apiErr = e.describeInstanceTypes(in, requestID)
		case "DescribeInstanceTypeOfferings":
			out, apiErr = e.describeInstanceTypeOfferings(in, requestID)
		case "DescribeSpotPriceHistory":
			out, apiErr = e.describeSpotPriceHistory(in, requestID)
		case "GetSpotPlacementScores":
			out, apiErr = e.getSpotPlacementScores(in, requestID)
		default:
			handled := false
			if e.compute != nil {
				out, apiErr, handled = e.compute(action, in, requestID)
			}
			if !handled && action == "DescribeCapacityReservations" {
				// An EC2 without instances (NewEC2 alone, for catalog
				// reads) holds no reservation either.
				handled = true
				out = ec2DescribeCapacityReservationsResponse{Namespace: ec2Namespace, RequestID: requestID}
			}
			if !handled {
				// Loud: a client (CAPA) needs an action the simulator lacks,
				// and whatever it does next is not what it does against AWS.
				e.log.Error(nil, "UNIMPLEMENTED EC2 ACTION called; answering InvalidAction", "action", action, "parameters", fmt.Sprint(form))
				apiErr = &ec2APIError{400, "InvalidAction", fmt.Sprintf("The action %s is not valid for this web service.", action)}
			}
		}
	}
	if apiErr != nil {
		writeEC2Error(w, requestID, apiErr)
		return
	}
	b, err := xml.Marshal(out)
	if err != nil {
		writeEC2Error(w, requestID, &ec2APIError{500, "InternalError", err.Error()})
		return
	}
	b = append([]byte(xml.Header), b...)
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Header().Set("x-amzn-RequestId", requestID)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// throttle consumes one throttled call of action, if any is left.
func (e *EC2) throttle(action string) bool {
	for _, key := range []string{action, ""} {
		if e.throttled[key] > 0 {
			e.throttled[key]--
			if e.throttled[key] == 0 {
				delete(e.throttled, key)
			}
			return true
		}
	}
	return false
}

func writeEC2Error(w http.ResponseWriter, requestID string, e *ec2APIError) {
	type ec2ErrorXML struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	doc := struct {
		XMLName   xml.Name      `xml:"Response"`
		Errors    []ec2ErrorXML `xml:"Errors>Error"`
		RequestID string        `xml:"RequestID"`
	}{Errors: []ec2ErrorXML{{e.code, e.message}}, RequestID: requestID}
	b, _ := xml.Marshal(doc)
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(e.status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(b)
}

// ec2Input is a parsed query request.
type ec2Input struct {
	values  map[string][]string
	filters map[string][]string // filter name -> values
}

var (
	filterNameKey  = regexp.MustCompile(`^Filter\.(\d+)\.Name$`)
	filterValueKey = regexp.MustCompile(`^Filter\.(\d+)\.Value\.\d+$`)
)

func ec2Request(form map[string][]string) ec2Input {
	in := ec2Input{values: form, filters: map[string][]string{}}
	names := map[string]string{}
	for k, v := range form {
		if m := filterNameKey.FindStringSubmatch(k); m != nil && len(v) > 0 {
			names[m[1]] = v[0]
		}
	}
	for k, v := range form {
		if m := filterValueKey.FindStringSubmatch(k); m != nil {
			if name, ok := names[m[1]]; ok {
				in.filters[name] = append(in.filters[name], v...)
			}
		}
	}
	for _, name := range names {
		if _, ok := in.filters[name]; !ok {
			in.filters[name] = nil
		}
	}
	return in
}

func (in ec2Input) get(key string) string {
	if v := in.values[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// list returns the members of a flattened list parameter: Key.1, Key.2, ...
func (in ec2Input) list(key string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := in.values[key+"."+strconv.Itoa(i)]
		if !ok {
			return out
		}
		out = append(out, v...)
	}
}

// checkFilters refuses filter names the action does not know, as EC2 does.
func (in ec2Input) checkFilters(known ...string) *ec2APIError {
	for name, values := range in.filters {
		if !slices.Contains(known, name) {
			return errEC2InvalidParameterValue("The filter '%s' is invalid", name)
		}
		if len(values) == 0 {
			return errEC2InvalidParameterValue("The filter '%s' has no values", name)
		}
	}
	return nil
}

// match reports whether value passes the named filter (absent filters
// pass). Values may use EC2's wildcards: * and ?.
func (in ec2Input) match(name, value string) bool {
	patterns, ok := in.filters[name]
	if !ok {
		return true
	}
	for _, p := range patterns {
		if wildcardMatch(p, value) {
			return true
		}
	}
	return false
}

func wildcardMatch(pattern, value string) bool {
	if !strings.ContainsAny(pattern, "*?") {
		return pattern == value
	}
	re := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(pattern)) + "$"
	ok, _ := regexp.MatchString(re, value)
	return ok
}

// page cuts items (sorted by key) after the NextToken's key, MaxResults at
// a time. Tokens carry the last key answered, so items added or removed
// between pages neither repeat nor shift the rest.
func page[T any](in ec2Input, items []T, key func(T) string, minResults, maxResults int) ([]T, string, *ec2APIError) {
	size := maxResults
	if s := in.get("MaxResults"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < minResults || n > maxResults {
			return nil, "", errEC2InvalidParameterValue("Value ( %s ) for parameter maxResults is invalid. Expecting a value between %d and %d.", s, minResults, maxResults)
		}
		size = n
	}
	if tok := in.get("NextToken"); tok != "" {
		after, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil {
			return nil, "", &ec2APIError{400, "InvalidPaginationToken", fmt.Sprintf("The pagination token %q is invalid.", tok)}
		}
		i := sort.Search(len(items), func(i int) bool { return key(items[i]) > string(after) })
		items = items[i:]
	}
	if len(items) <= size {
		return items, "", nil
	}
	items = items[:size]
	return items, base64.RawURLEncoding.EncodeToString([]byte(key(items[size-1]))), nil
}

// DescribeAvailabilityZones.

type ec2ZonesResponse struct {
	XMLName   xml.Name     `xml:"DescribeAvailabilityZonesResponse"`
	Namespace string       `xml:"xmlns,attr"`
	RequestID string       `xml:"requestId"`
	Zones     []ec2ZoneXML `xml:"availabilityZoneInfo>item"`
}

type ec2ZoneXML struct {
	ZoneName           string `xml:"zoneName"`
	ZoneID             string `xml:"zoneId"`
	State              string `xml:"zoneState"`
	OptInStatus        string `xml:"optInStatus"`
	RegionName         string `xml:"regionName"`
	GroupName          string `xml:"groupName"`
	NetworkBorderGroup string `xml:"networkBorderGroup"`
	ZoneType           string `xml:"zoneType"`
}

func (e *EC2) describeAvailabilityZones(in ec2Input, requestID string) (any, *ec2APIError) {
	if err := in.checkFilters("zone-type", "zone-name", "zone-id", "region-name", "state", "opt-in-status"); err != nil {
		return nil, err
	}
	names, ids := in.list("ZoneName"), in.list("ZoneId")
	out := ec2ZonesResponse{Namespace: ec2Namespace, RequestID: requestID}
	for _, z := range e.zones {
		if (len(names) > 0 && !slices.Contains(names, z.Name)) || (len(ids) > 0 && !slices.Contains(ids, z.ID)) {
			continue
		}
		x := ec2ZoneXML{ZoneName: z.Name, ZoneID: z.ID, State: "available", OptInStatus: "opt-in-not-required", RegionName: e.region,
			GroupName: e.region, NetworkBorderGroup: e.region, ZoneType: "availability-zone"}
		if !in.match("zone-type", x.ZoneType) || !in.match("zone-name", x.ZoneName) || !in.match("zone-id", x.ZoneID) ||
			!in.match("region-name", x.RegionName) || !in.match("state", x.State) || !in.match("opt-in-status", x.OptInStatus) {
			continue
		}
		out.Zones = append(out.Zones, x)
	}
	return out, nil
}

// DescribeInstanceTypes.

type ec2InstanceTypesResponse struct {
	XMLName   xml.Name              `xml:"DescribeInstanceTypesResponse"`
	Namespace string                `xml:"xmlns,attr"`
	RequestID string                `xml:"requestId"`
	Types     []ec2InstanceTypeInfo `xml:"instanceTypeSet>item"`
	NextToken string                `xml:"nextToken,omitempty"`
}

type ec2InstanceTypeInfo struct {
	InstanceType             string                       `xml:"instanceType"`
	CurrentGeneration        bool                         `xml:"currentGeneration"`
	SupportedUsageClasses    []string                     `xml:"supportedUsageClasses>item"`
	BareMetal                bool                         `xml:"bareMetal"`
	Hypervisor               string                       `xml:"hypervisor,omitempty"`
	ProcessorInfo            ec2ProcessorInfo             `xml:"processorInfo"`
	VCPUInfo                 ec2VCPUInfo                  `xml:"vCpuInfo"`
	MemoryInfo               ec2MemoryInfo                `xml:"memoryInfo"`
	InstanceStorageSupported bool                         `xml:"instanceStorageSupported"`
	InstanceStorageInfo      *ec2StorageInfo              `xml:"instanceStorageInfo,omitempty"`
	NetworkInfo              ec2NetworkInfo               `xml:"networkInfo"`
	GPUInfo                  *ec2GPUInfo                  `xml:"gpuInfo,omitempty"`
	NeuronInfo               *ec2NeuronInfo               `xml:"neuronInfo,omitempty"`
	InferenceAcceleratorInfo *ec2InferenceAcceleratorInfo `xml:"inferenceAcceleratorInfo,omitempty"`
}

type ec2ProcessorInfo struct {
	SupportedArchitectures []string `xml:"supportedArchitectures>item"`
	Manufacturer           string   `xml:"manufacturer,omitempty"`
}

type ec2VCPUInfo struct {
	DefaultVCPUs int `xml:"defaultVCpus"`
}

type ec2MemoryInfo struct {
	SizeInMiB int64 `xml:"sizeInMiB"`
}

type ec2StorageInfo struct {
	TotalSizeInGB int64  `xml:"totalSizeInGB"`
	NVMeSupport   string `xml:"nvmeSupport"`
}

type ec2NetworkInfo struct {
	MaximumNetworkInterfaces  int                  `xml:"maximumNetworkInterfaces"`
	MaximumNetworkCards       int                  `xml:"maximumNetworkCards"`
	DefaultNetworkCardIndex   int                  `xml:"defaultNetworkCardIndex"`
	NetworkCards              []ec2NetworkCardInfo `xml:"networkCards>item"`
	IPv4AddressesPerInterface int                  `xml:"ipv4AddressesPerInterface"`
	EFASupported              bool                 `xml:"efaSupported"`
	EFAInfo                   *ec2EFAInfo          `xml:"efaInfo,omitempty"`
}

type ec2NetworkCardInfo struct {
	NetworkCardIndex         int     `xml:"networkCardIndex"`
	MaximumNetworkInterfaces int     `xml:"maximumNetworkInterfaces"`
	BaselineBandwidthInGbps  float64 `xml:"baselineBandwidthInGbps,omitempty"`
}

type ec2EFAInfo struct {
	MaximumEFAInterfaces int `xml:"maximumEfaInterfaces"`
}

type ec2GPUInfo struct {
	GPUs                []ec2GPUDevice `xml:"gpus>item"`
	TotalGPUMemoryInMiB int64          `xml:"totalGpuMemoryInMiB"`
}

type ec2GPUDevice struct {
	Name         string        `xml:"name"`
	Manufacturer string        `xml:"manufacturer"`
	Count        int           `xml:"count"`
	MemoryInfo   ec2MemoryInfo `xml:"memoryInfo"`
}

type ec2NeuronInfo struct {
	Devices []ec2NeuronDevice `xml:"neuronDevices>item"`
}

type ec2NeuronDevice struct {
	Name  string `xml:"name"`
	Count int    `xml:"count"`
}

type ec2InferenceAcceleratorInfo struct {
	Accelerators []ec2Accelerator `xml:"accelerators>item"`
}

type ec2Accelerator struct {
	Name         string `xml:"name"`
	Manufacturer string `xml:"manufacturer"`
	Count        int    `xml:"count"`
}

func (e *EC2) describeInstanceTypes(in ec2Input, requestID string) (any, *ec2APIError) {
	if err := in.checkFilters("instance-type", "processor-info.supported-architecture", "current-generation", "bare-metal"); err != nil {
		return nil, err
	}
	asked := in.list("InstanceType")
	var missing []string
	for _, name := range asked {
		if _, ok := e.types[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, &ec2APIError{400, "InvalidInstanceType", fmt.Sprintf("The following supplied instance types do not exist: [%s]", strings.Join(missing, ", "))}
	}
	var infos []ec2InstanceTypeInfo
	for _, it := range e.types {
		if len(asked) > 0 && !slices.Contains(asked, it.Name) {
			continue
		}
		info := ec2TypeInfo(it)
		_, archFiltered := in.filters["processor-info.supported-architecture"]
		archOK := !archFiltered || slices.ContainsFunc(info.ProcessorInfo.SupportedArchitectures, func(a string) bool {
			return in.match("processor-info.supported-architecture", a)
		})
		if !archOK || !in.match("instance-type", it.Name) || !in.match("current-generation", "true") || !in.match("bare-metal", strconv.FormatBool(it.BareMetal)) {
			continue
		}
		infos = append(infos, info)
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].InstanceType < infos[j].InstanceType })
	items, next, err := page(in, infos, func(i ec2InstanceTypeInfo) string { return i.InstanceType }, 5, 100)
	if err != nil {
		return nil, err
	}
	return ec2InstanceTypesResponse{Namespace: ec2Namespace, RequestID: requestID, Types: items, NextToken: next}, nil
}

// ec2TypeInfo describes a catalog type as DescribeInstanceTypes does,
// spelling names as EC2 does (NVIDIA, Intel, x86_64).
func ec2TypeInfo(it cloud.InstanceType) ec2InstanceTypeInfo {
	info := ec2InstanceTypeInfo{
		InstanceType: it.Name, CurrentGeneration: true, SupportedUsageClasses: []string{"on-demand", "spot"},
		BareMetal: it.BareMetal, Hypervisor: it.Hypervisor,
		VCPUInfo: ec2VCPUInfo{DefaultVCPUs: it.VCPU}, MemoryInfo: ec2MemoryInfo{SizeInMiB: it.MemoryMiB},
	}
	switch it.Arch {
	case cloud.ArchAMD64:
		info.ProcessorInfo.SupportedArchitectures = []string{"x86_64"}
	case cloud.ArchARM64:
		info.ProcessorInfo.SupportedArchitectures = []string{"arm64"}
	}
	info.ProcessorInfo.Manufacturer = ec2Spelling(it.CPUManufacturer)
	if it.LocalNVMeGB > 0 {
		info.InstanceStorageSupported = true
		info.InstanceStorageInfo = &ec2StorageInfo{TotalSizeInGB: it.LocalNVMeGB, NVMeSupport: "required"}
	}
	defaultCard := it.DefaultCardMaxENIs
	if defaultCard == 0 {
		defaultCard = it.MaxENIs
	}
	total := max(it.MaxENIs, defaultCard)
	n := &info.NetworkInfo
	n.MaximumNetworkInterfaces, n.IPv4AddressesPerInterface = total, it.IPv4PerENI
	n.NetworkCards = []ec2NetworkCardInfo{{NetworkCardIndex: 0, MaximumNetworkInterfaces: defaultCard, BaselineBandwidthInGbps: float64(it.NetworkBandwidthMbps) / 1000}}
	if total > defaultCard {
		// The ENIs beyond the default card's sit on a second card, which
		// pods never get IPs from.
		n.NetworkCards = append(n.NetworkCards, ec2NetworkCardInfo{NetworkCardIndex: 1, MaximumNetworkInterfaces: total - defaultCard})
	}
	n.MaximumNetworkCards = len(n.NetworkCards)
	if it.EFACount > 0 {
		n.EFASupported, n.EFAInfo = true, &ec2EFAInfo{MaximumEFAInterfaces: it.EFACount}
	}
	if it.GPUCount > 0 {
		info.GPUInfo = &ec2GPUInfo{
			GPUs: []ec2GPUDevice{{Name: strings.ToUpper(it.GPUName), Manufacturer: ec2Spelling(it.GPUManufacturer), Count: it.GPUCount,
				MemoryInfo: ec2MemoryInfo{SizeInMiB: it.GPUMemoryMiB}}},
			TotalGPUMemoryInMiB: int64(it.GPUCount) * it.GPUMemoryMiB,
		}
	}
	if it.AcceleratorCount > 0 {
		if it.AcceleratorManufacturer == cloud.ManufacturerAWS {
			info.NeuronInfo = &ec2NeuronInfo{Devices: []ec2NeuronDevice{{Name: strings.ToUpper(it.AcceleratorName), Count: it.AcceleratorCount}}}
		} else {
			info.InferenceAcceleratorInfo = &ec2InferenceAcceleratorInfo{Accelerators: []ec2Accelerator{{
				Name: strings.ToUpper(it.AcceleratorName), Manufacturer: ec2Spelling(it.AcceleratorManufacturer), Count: it.AcceleratorCount}}}
		}
	}
	return info
}

// ec2Spelling spells a manufacturer as EC2 does.
func ec2Spelling(manufacturer string) string {
	switch manufacturer {
	case "intel":
		return "Intel"
	case cloud.ManufacturerAMD:
		return "AMD"
	case cloud.ManufacturerAWS:
		return "AWS"
	case cloud.ManufacturerNVIDIA:
		return "NVIDIA"
	case cloud.ManufacturerHabana:
		return "Habana"
	}
	return manufacturer
}

// DescribeInstanceTypeOfferings.

type ec2OfferingsResponse struct {
	XMLName   xml.Name         `xml:"DescribeInstanceTypeOfferingsResponse"`
	Namespace string           `xml:"xmlns,attr"`
	RequestID string           `xml:"requestId"`
	Offerings []ec2OfferingXML `xml:"instanceTypeOfferingSet>item"`
	NextToken string           `xml:"nextToken,omitempty"`
}

type ec2OfferingXML struct {
	InstanceType string `xml:"instanceType"`
	LocationType string `xml:"locationType"`
	Location     string `xml:"location"`
}

func (e *EC2) describeInstanceTypeOfferings(in ec2Input, requestID string) (any, *ec2APIError) {
	if err := in.checkFilters("instance-type", "location"); err != nil {
		return nil, err
	}
	locationType := in.get("LocationType")
	if locationType == "" {
		locationType = "region"
	}
	var offerings []ec2OfferingXML
	seen := map[string]bool{}
	for _, z := range e.zones {
		for name := range e.offered[z.ID] {
			o := ec2OfferingXML{InstanceType: name, LocationType: locationType}
			switch locationType {
			case "region":
				if seen[name] {
					continue
				}
				seen[name], o.Location = true, e.region
			case "availability-zone":
				o.Location = z.Name
			case "availability-zone-id":
				o.Location = z.ID
			default:
				return nil, errEC2InvalidParameterValue("Value ( %s ) for parameter locationType is invalid. Valid values: region, availability-zone, availability-zone-id, outpost.", locationType)
			}
			if in.match("instance-type", o.InstanceType) && in.match("location", o.Location) {
				offerings = append(offerings, o)
			}
		}
	}
	key := func(o ec2OfferingXML) string { return o.Location + "\x00" + o.InstanceType }
	sort.Slice(offerings, func(i, j int) bool { return key(offerings[i]) < key(offerings[j]) })
	items, next, err := page(in, offerings, key, 5, 1000)
	if err != nil {
		return nil, err
	}
	return ec2OfferingsResponse{Namespace: ec2Namespace, RequestID: requestID, Offerings: items, NextToken: next}, nil
}

// DescribeSpotPriceHistory.

type ec2SpotPricesResponse struct {
	XMLName   xml.Name          `xml:"DescribeSpotPriceHistoryResponse"`
	Namespace string            `xml:"xmlns,attr"`
	RequestID string            `xml:"requestId"`
	Prices    []ec2SpotPriceXML `xml:"spotPriceHistorySet>item"`
	NextToken string            `xml:"nextToken"`
}

// ec2SpotPriceXML names the zone only by name, as EC2 has long done: a
// client needs DescribeAvailabilityZones to get its ID.
type ec2SpotPriceXML struct {
	InstanceType       string `xml:"instanceType"`
	ProductDescription string `xml:"productDescription"`
	SpotPrice          string `xml:"spotPrice"`
	Timestamp          string `xml:"timestamp"`
	AvailabilityZone   string `xml:"availabilityZone"`
	at                 time.Time
	zoneID             string
}

// describeSpotPriceHistory answers, for each type and zone, the records
// within [StartTime, EndTime] and the one in effect at StartTime, newest
// first: so asking from now gives each price in effect now.
func (e *EC2) describeSpotPriceHistory(in ec2Input, requestID string) (any, *ec2APIError) {
	if err := in.checkFilters("availability-zone", "instance-type", "product-description"); err != nil {
		return nil, err
	}
	parseTime := func(name string) (time.Time, bool, *ec2APIError) {
		s := in.get(name)
		if s == "" {
			return time.Time{}, false, nil
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, false, errEC2InvalidParameterValue("Value (%s) for parameter %s is invalid.", s, name)
		}
		return t, true, nil
	}
	start, hasStart, apiErr := parseTime("StartTime")
	if apiErr != nil {
		return nil, apiErr
	}
	end, hasEnd, apiErr := parseTime("EndTime")
	if apiErr != nil {
		return nil, apiErr
	}
	if !hasEnd {
		end = e.now()
	}
	products := in.list("ProductDescription")
	if (len(products) > 0 && !slices.Contains(products, spotProduct)) || !in.match("product-description", spotProduct) {
		return ec2SpotPricesResponse{Namespace: ec2Namespace, RequestID: requestID}, nil
	}
	types := in.list("InstanceType")
	nameOf := map[string]string{}
	for _, z := range e.zones {
		nameOf[z.ID] = z.Name
	}
	zone := in.get("AvailabilityZone")
	var prices []ec2SpotPriceXML
	for k, points := range e.spot {
		name, ok := nameOf[k.zoneID]
		if !ok || (len(types) > 0 && !slices.Contains(types, k.instanceType)) || (zone != "" && zone != name) ||
			!in.match("instance-type", k.instanceType) || !in.match("availability-zone", name) {
			continue
		}
		inEffect := -1 // the last record at or before start
		for i, p := range points {
			switch {
			case p.at.After(end):
			case hasStart && !p.at.After(start):
				inEffect = i
			default:
				prices = append(prices, spotRecord(k, name, p))
			}
		}
		if inEffect >= 0 {
			prices = append(prices, spotRecord(k, name, points[inEffect]))
		}
	}
	key := func(p ec2SpotPriceXML) string {
		// Newest first: the timestamp counted down from the far future.
		return fmt.Sprintf("%020d\x00%s\x00%s", math.MaxInt64-p.at.UnixNano(), p.InstanceType, p.zoneID)
	}
	// The order of key, without formatting a key per comparison.
	sort.Slice(prices, func(i, j int) bool {
		a, b := prices[i], prices[j]
		if a, b := a.at.UnixNano(), b.at.UnixNano(); a != b {
			return a > b
		}
		if a.InstanceType != b.InstanceType {
			return a.InstanceType < b.InstanceType
		}
		return a.zoneID < b.zoneID
	})
	items, next, err := page(in, prices, key, 5, 1000)
	if err != nil {
		return nil, err
	}
	// EC2 answers an empty nextToken on the last page of this call.
	return ec2SpotPricesResponse{Namespace: ec2Namespace, RequestID: requestID, Prices: items, NextToken: next}, nil
}

func spotRecord(k ec2SpotKey, zoneName string, p ec2SpotPoint) ec2SpotPriceXML {
	return ec2SpotPriceXML{
		InstanceType: k.instanceType, ProductDescription: spotProduct, SpotPrice: strconv.FormatFloat(p.usd, 'f', 6, 64),
		Timestamp: p.at.UTC().Format("2006-01-02T15:04:05.000Z"), AvailabilityZone: zoneName, at: p.at, zoneID: k.zoneID,
	}
}
