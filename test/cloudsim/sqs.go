package cloudsim

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SQS is a local Amazon SQS endpoint: an HTTP server speaking the AWS JSON
// 1.0 protocol exactly as aws-sdk-go-v2's service/sqs client sends it
// (POST /, X-Amz-Target: AmazonSQS.<Operation>, Content-Type:
// application/x-amz-json-1.0) and answering with SQS's shapes and errors,
// so the interruption controller's real client can poll it. Requests are
// not authenticated (signatures are accepted unchecked).
//
// Operations: CreateQueue, GetQueueUrl, SendMessage, ReceiveMessage (up to
// 10 messages, long polling up to 20 s, visibility timeout with
// redelivery of messages not deleted in time) and DeleteMessage. Standard
// queues only: delivery is in send order, exactly once per receive.
type SQS struct {
	localEndpoint

	account string
	now     func() time.Time

	mu       sync.Mutex
	queues   map[string]*sqsQueue // by name
	receipts map[string]string    // receipt handle -> message ID
}

type sqsQueue struct {
	name       string
	visibility time.Duration
	wait       time.Duration
	attributes map[string]string
	messages   []*sqsMessage // in send order
	// changed is closed (and replaced) when a message is added, so long
	// polls wake up.
	changed chan struct{}
}

type sqsMessage struct {
	id, body, md5 string
	attributes    map[string]sqsAttributeValue
	attributesMD5 string
	sent          time.Time
	visibleAt     time.Time
	receiveCount  int
	firstReceive  time.Time
}

type sqsAttributeValue struct {
	DataType    string `json:"DataType"`
	StringValue string `json:"StringValue,omitempty"`
	BinaryValue []byte `json:"BinaryValue,omitempty"`
}

// SQS limits (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html).
const (
	sqsMaxMessages       = 10
	sqsMaxWait           = 20 * time.Second
	sqsMaxVisibility     = 12 * time.Hour
	sqsMaxBodyBytes      = 256 * 1024
	sqsMaxDelay          = 15 * time.Minute
	sqsDefaultVisibility = 30 * time.Second
	// DefaultAccountID is the account queue URLs and events name.
	DefaultAccountID = "123456789012"
)

// NewSQS returns a stopped endpoint for the account (DefaultAccountID
// when empty); Start serves it.
func NewSQS(account string) *SQS {
	if account == "" {
		account = DefaultAccountID
	}
	return &SQS{account: account, now: time.Now, queues: map[string]*sqsQueue{}, receipts: map[string]string{}}
}

// Start serves the endpoint on addr ("127.0.0.1:0" when empty: a free
// port on loopback).
func (s *SQS) Start(addr string) error { return s.localEndpoint.start("SQS", addr, s) }

// CreateQueue creates a standard queue (or returns the existing one) and
// returns its URL.
func (s *SQS) CreateQueue(name string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.createQueue(name, nil); err != nil {
		return "", err
	}
	return s.queueURL(name), nil
}

// QueueURL is the URL of a queue, as GetQueueUrl returns it.
func (s *SQS) QueueURL(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queueURL(name)
}

// Send puts a message on a queue, as SendMessage does, and returns its ID.
func (s *SQS) Send(queue, body string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q, ok := s.queues[queue]
	if !ok {
		return "", fmt.Errorf("simulated SQS: no queue %q", queue)
	}
	m, apiErr := s.send(q, body, 0, nil)
	if apiErr != nil {
		return "", apiErr
	}
	return m.id, nil
}

// Messages counts a queue's messages: visible ones, and in flight (received,
// not yet deleted, invisible).
func (s *SQS) Messages(queue string) (visible, inFlight int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q, ok := s.queues[queue]
	if !ok {
		return 0, 0
	}
	now := s.now()
	for _, m := range q.messages {
		if now.Before(m.visibleAt) {
			inFlight++
		} else {
			visible++
		}
	}
	return visible, inFlight
}

// queueURL follows SQS's <endpoint>/<account>/<name>.
func (s *SQS) queueURL(name string) string {
	return s.URL() + "/" + s.account + "/" + name
}

// The wire protocol.

// sqsError is an SQS error response of the JSON protocol: the HTTP status,
// the shape's type in "__type", and the legacy query protocol code in the
// x-amzn-query-error header (which the SDK reports as the error code).
type sqsError struct {
	status    int
	shape     string // e.g. com.amazonaws.sqs#QueueDoesNotExist
	queryCode string // e.g. AWS.SimpleQueueService.NonExistentQueue
	fault     string // Sender or Receiver
	message   string
}

func (e *sqsError) Error() string { return e.queryCode + ": " + e.message }

func errQueueDoesNotExist() *sqsError {
	return &sqsError{400, "com.amazonaws.sqs#QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", "Sender", "The specified queue does not exist."}
}

func errInvalidParameter(format string, args ...any) *sqsError {
	return &sqsError{400, "com.amazon.coral.validate#ValidationException", "InvalidParameterValue", "Sender", fmt.Sprintf(format, args...)}
}

func errMissingParameter(name string) *sqsError {
	return &sqsError{400, "com.amazonaws.sqs#MissingRequiredParameterException", "MissingParameter", "Sender",
		fmt.Sprintf("The request must contain the parameter %s.", name)}
}

func errInvalidReceipt(handle string) *sqsError {
	return &sqsError{400, "com.amazonaws.sqs#ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid", "Sender",
		fmt.Sprintf("The input receipt handle %q is not a valid receipt handle.", handle)}
}

// ServeHTTP answers one SQS API call.
func (s *SQS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := newUUID()
	w.Header().Set("x-amzn-RequestId", requestID)
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, "AmazonSQS.")
	switch {
	case r.Method != http.MethodPost:
		writeSQSError(w, &sqsError{405, "com.amazon.coral.service#UnknownOperationException", "UnknownOperation", "Sender",
			"SQS's JSON protocol takes POST requests; got " + r.Method})
		return
	case !ok:
		writeSQSError(w, &sqsError{400, "com.amazon.coral.service#UnknownOperationException", "UnknownOperation", "Sender",
			fmt.Sprintf("X-Amz-Target %q does not name an AmazonSQS operation", target)})
		return
	case !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-amz-json-1.0"):
		writeSQSError(w, &sqsError{400, "com.amazon.coral.service#SerializationException", "InvalidParameterValue", "Sender",
			fmt.Sprintf("Content-Type %q: SQS's JSON protocol expects application/x-amz-json-1.0", r.Header.Get("Content-Type"))})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 2*sqsMaxBodyBytes))
	if err != nil {
		writeSQSError(w, &sqsError{400, "com.amazon.coral.service#SerializationException", "InvalidParameterValue", "Sender", err.Error()})
		return
	}
	if len(body) == 0 {
		body = []byte("{}")
	}
	var out any
	var apiErr *sqsError
	decode := func(v any) bool {
		if err := json.Unmarshal(body, v); err != nil {
			apiErr = &sqsError{400, "com.amazon.coral.service#SerializationException", "InvalidParameterValue", "Sender", "Malformed request body: " + err.Error()}
			return false
		}
		return true
	}
	switch op {
	case "CreateQueue":
		var in createQueueInput
		if decode(&in) {
			out, apiErr = s.apiCreateQueue(in)
		}
	case "GetQueueUrl":
		var in getQueueURLInput
		if decode(&in) {
			out, apiErr = s.apiGetQueueURL(in)
		}
	case "SendMessage":
		var in sendMessageInput
		if decode(&in) {
			out, apiErr = s.apiSendMessage(in)
		}
	case "ReceiveMessage":
		var in receiveMessageInput
		if decode(&in) {
			out, apiErr = s.apiReceiveMessage(r.Context(), in)
		}
	case "DeleteMessage":
		var in deleteMessageInput
		if decode(&in) {
			apiErr = s.apiDeleteMessage(in)
		}
	default:
		apiErr = &sqsError{400, "com.amazonaws.sqs#UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", "Sender",
			fmt.Sprintf("The simulated SQS does not implement %s (only CreateQueue, GetQueueUrl, SendMessage, ReceiveMessage, DeleteMessage).", op)}
	}
	if apiErr != nil {
		writeSQSError(w, apiErr)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	if out == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		writeSQSError(w, &sqsError{500, "com.amazonaws.sqs#InternalError", "InternalError", "Receiver", err.Error()})
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func writeSQSError(w http.ResponseWriter, e *sqsError) {
	b, _ := json.Marshal(map[string]string{"__type": e.shape, "message": e.message})
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("x-amzn-query-error", e.queryCode+";"+e.fault)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(e.status)
	_, _ = w.Write(b)
}

type createQueueInput struct {
	QueueName  *string           `json:"QueueName"`
	Attributes map[string]string `json:"Attributes"`
}

type getQueueURLInput struct {
	QueueName              *string `json:"QueueName"`
	QueueOwnerAWSAccountID *string `json:"QueueOwnerAWSAccountId"`
}

type sendMessageInput struct {
	QueueURL          *string                      `json:"QueueUrl"`
	MessageBody       *string                      `json:"MessageBody"`
	DelaySeconds      int32                        `json:"DelaySeconds"`
	MessageAttributes map[string]sqsAttributeValue `json:"MessageAttributes"`
}

type receiveMessageInput struct {
	QueueURL                    *string  `json:"QueueUrl"`
	MaxNumberOfMessages         *int32   `json:"MaxNumberOfMessages"`
	VisibilityTimeout           *int32   `json:"VisibilityTimeout"`
	WaitTimeSeconds             *int32   `json:"WaitTimeSeconds"`
	AttributeNames              []string `json:"AttributeNames"`
	MessageSystemAttributeNames []string `json:"MessageSystemAttributeNames"`
	MessageAttributeNames       []string `json:"MessageAttributeNames"`
}

type deleteMessageInput struct {
	QueueURL      *string `json:"QueueUrl"`
	ReceiptHandle *string `json:"ReceiptHandle"`
}

type queueURLOutput struct {
	QueueURL string `json:"QueueUrl"`
}

type sendMessageOutput struct {
	MessageID              string `json:"MessageId"`
	MD5OfMessageBody       string `json:"MD5OfMessageBody"`
	MD5OfMessageAttributes string `json:"MD5OfMessageAttributes,omitempty"`
}

type receiveMessageOutput struct {
	Messages []receivedMessage `json:"Messages,omitempty"`
}

type receivedMessage struct {
	MessageID              string                       `json:"MessageId"`
	ReceiptHandle          string                       `json:"ReceiptHandle"`
	MD5OfBody              string                       `json:"MD5OfBody"`
	Body                   string                       `json:"Body"`
	Attributes             map[string]string            `json:"Attributes,omitempty"`
	MD5OfMessageAttributes string                       `json:"MD5OfMessageAttributes,omitempty"`
	MessageAttributes      map[string]sqsAttributeValue `json:"MessageAttributes,omitempty"`
}

func (s *SQS) apiCreateQueue(in createQueueInput) (any, *sqsError) {
	if in.QueueName == nil {
		return nil, errMissingParameter("QueueName")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.createQueue(*in.QueueName, in.Attributes); err != nil {
		return nil, err
	}
	return queueURLOutput{QueueURL: s.queueURL(*in.QueueName)}, nil
}

// createQueue validates the name and attributes (VisibilityTimeout and
// ReceiveMessageWaitTimeSeconds are honoured; others are kept) and, as
// SQS, answers an existing queue with the same attributes with its URL
// and one with other attributes with QueueNameExists.
func (s *SQS) createQueue(name string, attrs map[string]string) (*sqsQueue, *sqsError) {
	if name == "" || len(name) > 80 || strings.HasSuffix(name, ".fifo") || strings.IndexFunc(name, func(r rune) bool {
		return !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) >= 0 {
		return nil, errInvalidParameter("Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length (FIFO queues are not simulated): %q", name)
	}
	if q, ok := s.queues[name]; ok {
		for k, v := range attrs {
			if q.attributes[k] != v {
				return nil, &sqsError{400, "com.amazonaws.sqs#QueueNameExists", "QueueAlreadyExists", "Sender",
					fmt.Sprintf("A queue already exists with the same name and a different value for attribute %s", k)}
			}
		}
		return q, nil
	}
	q := &sqsQueue{name: name, visibility: sqsDefaultVisibility, attributes: map[string]string{}, changed: make(chan struct{})}
	for k, v := range attrs {
		switch k {
		case "VisibilityTimeout":
			secs, err := strconv.Atoi(v)
			if err != nil || secs < 0 || time.Duration(secs)*time.Second > sqsMaxVisibility {
				return nil, &sqsError{400, "com.amazonaws.sqs#InvalidAttributeValue", "InvalidAttributeValue", "Sender", "Invalid value for the parameter VisibilityTimeout."}
			}
			q.visibility = time.Duration(secs) * time.Second
		case "ReceiveMessageWaitTimeSeconds":
			secs, err := strconv.Atoi(v)
			if err != nil || secs < 0 || time.Duration(secs)*time.Second > sqsMaxWait {
				return nil, &sqsError{400, "com.amazonaws.sqs#InvalidAttributeValue", "InvalidAttributeValue", "Sender", "Invalid value for the parameter ReceiveMessageWaitTimeSeconds."}
			}
			q.wait = time.Duration(secs) * time.Second
		}
		q.attributes[k] = v
	}
	s.queues[name] = q
	return q, nil
}

func (s *SQS) apiGetQueueURL(in getQueueURLInput) (any, *sqsError) {
	if in.QueueName == nil {
		return nil, errMissingParameter("QueueName")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if in.QueueOwnerAWSAccountID != nil && *in.QueueOwnerAWSAccountID != s.account {
		return nil, errQueueDoesNotExist()
	}
	if _, ok := s.queues[*in.QueueName]; !ok {
		return nil, errQueueDoesNotExist()
	}
	return queueURLOutput{QueueURL: s.queueURL(*in.QueueName)}, nil
}

// queueOf resolves a queue URL: its path must be /<account>/<name> (the
// host is not compared, so localhost and 127.0.0.1 both work).
func (s *SQS) queueOf(queueURL *string) (*sqsQueue, *sqsError) {
	if queueURL == nil {
		return nil, errMissingParameter("QueueUrl")
	}
	u, err := url.Parse(*queueURL)
	if err != nil {
		return nil, &sqsError{404, "com.amazonaws.sqs#InvalidAddress", "InvalidAddress", "Sender", "The address " + *queueURL + " is not valid for this endpoint."}
	}
	account, name, ok := strings.Cut(strings.Trim(u.Path, "/"), "/")
	if !ok || account != s.account {
		return nil, errQueueDoesNotExist()
	}
	q, ok := s.queues[name]
	if !ok {
		return nil, errQueueDoesNotExist()
	}
	return q, nil
}

func (s *SQS) apiSendMessage(in sendMessageInput) (any, *sqsError) {
	if in.MessageBody == nil {
		return nil, errMissingParameter("MessageBody")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, apiErr := s.queueOf(in.QueueURL)
	if apiErr != nil {
		return nil, apiErr
	}
	if in.DelaySeconds < 0 || time.Duration(in.DelaySeconds)*time.Second > sqsMaxDelay {
		return nil, errInvalidParameter("Value %d for parameter DelaySeconds is invalid. Reason: must be between 0 and 900, if provided.", in.DelaySeconds)
	}
	m, apiErr := s.send(q, *in.MessageBody, time.Duration(in.DelaySeconds)*time.Second, in.MessageAttributes)
	if apiErr != nil {
		return nil, apiErr
	}
	return sendMessageOutput{MessageID: m.id, MD5OfMessageBody: m.md5, MD5OfMessageAttributes: m.attributesMD5}, nil
}

func (s *SQS) send(q *sqsQueue, body string, delay time.Duration, attrs map[string]sqsAttributeValue) (*sqsMessage, *sqsError) {
	if body == "" {
		return nil, errInvalidParameter("The request must contain the parameter MessageBody.")
	}
	if len(body) > sqsMaxBodyBytes {
		return nil, errInvalidParameter("One or more parameters are invalid. Reason: Message must be shorter than %d bytes.", sqsMaxBodyBytes)
	}
	for name, v := range attrs {
		if v.DataType == "" || (v.StringValue == "" && len(v.BinaryValue) == 0) {
			return nil, errInvalidParameter("The message attribute '%s' must contain a non-empty value of type '%s'.", name, v.DataType)
		}
	}
	now := s.now()
	sum := md5.Sum([]byte(body))
	m := &sqsMessage{
		id: newUUID(), body: body, md5: hex.EncodeToString(sum[:]), attributes: attrs,
		sent: now, visibleAt: now.Add(delay),
	}
	if len(attrs) > 0 {
		m.attributesMD5 = attributesMD5(attrs)
	}
	q.messages = append(q.messages, m)
	close(q.changed)
	q.changed = make(chan struct{})
	return m, nil
}

// attributesMD5 is SQS's digest of message attributes: for each attribute
// by name, the length-prefixed name, data type, a transport byte (1
// string, 2 binary) and the length-prefixed value.
func attributesMD5(attrs map[string]sqsAttributeValue) string {
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	h := md5.New()
	field := func(b []byte) {
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(b)))
		h.Write(l[:])
		h.Write(b)
	}
	for _, n := range names {
		v := attrs[n]
		field([]byte(n))
		field([]byte(v.DataType))
		if len(v.BinaryValue) > 0 {
			h.Write([]byte{2})
			field(v.BinaryValue)
		} else {
			h.Write([]byte{1})
			field([]byte(v.StringValue))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (s *SQS) apiReceiveMessage(ctx context.Context, in receiveMessageInput) (any, *sqsError) {
	max := int32(1)
	if in.MaxNumberOfMessages != nil {
		max = *in.MaxNumberOfMessages
		if max < 1 || max > sqsMaxMessages {
			return nil, errInvalidParameter("Value %d for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.", max)
		}
	}
	s.mu.Lock()
	q, apiErr := s.queueOf(in.QueueURL)
	if apiErr != nil {
		s.mu.Unlock()
		return nil, apiErr
	}
	visibility, wait := q.visibility, q.wait
	s.mu.Unlock()
	if in.VisibilityTimeout != nil {
		if *in.VisibilityTimeout < 0 || time.Duration(*in.VisibilityTimeout)*time.Second > sqsMaxVisibility {
			return nil, errInvalidParameter("Value %d for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200, if provided.", *in.VisibilityTimeout)
		}
		visibility = time.Duration(*in.VisibilityTimeout) * time.Second
	}
	if in.WaitTimeSeconds != nil {
		if *in.WaitTimeSeconds < 0 || time.Duration(*in.WaitTimeSeconds)*time.Second > sqsMaxWait {
			return nil, errInvalidParameter("Value %d for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.", *in.WaitTimeSeconds)
		}
		wait = time.Duration(*in.WaitTimeSeconds) * time.Second
	}
	systemAttrs := append(append([]string{}, in.AttributeNames...), in.MessageSystemAttributeNames...)
	deadline := s.now().Add(wait)
	for {
		s.mu.Lock()
		got, next, changed := s.receive(q, int(max), visibility, systemAttrs, in.MessageAttributeNames)
		s.mu.Unlock()
		now := s.now()
		if len(got) > 0 || !now.Before(deadline) {
			return receiveMessageOutput{Messages: got}, nil
		}
		// Long poll: wait for a send, for an in-flight message to become
		// visible again, or for the wait time to end.
		until := deadline
		if !next.IsZero() && next.Before(until) {
			until = next
		}
		timer := time.NewTimer(until.Sub(now))
		select {
		case <-changed:
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return receiveMessageOutput{}, nil
		}
		timer.Stop()
	}
}

// receive takes up to max visible messages, oldest first, hides them for
// visibility and gives each a new receipt handle. It also returns when
// the next invisible message becomes visible and the queue's change
// channel.
func (s *SQS) receive(q *sqsQueue, max int, visibility time.Duration, systemAttrs, messageAttrs []string) ([]receivedMessage, time.Time, chan struct{}) {
	now := s.now()
	var out []receivedMessage
	var next time.Time
	for _, m := range q.messages {
		if now.Before(m.visibleAt) {
			if next.IsZero() || m.visibleAt.Before(next) {
				next = m.visibleAt
			}
			continue
		}
		if len(out) == max {
			continue
		}
		m.receiveCount++
		if m.firstReceive.IsZero() {
			m.firstReceive = now
		}
		m.visibleAt = now.Add(visibility)
		receipt := s.newReceipt(q, m)
		rm := receivedMessage{MessageID: m.id, ReceiptHandle: receipt, MD5OfBody: m.md5, Body: m.body}
		rm.Attributes = s.systemAttributes(m, systemAttrs)
		if attrs := selectAttributes(m.attributes, messageAttrs); len(attrs) > 0 {
			rm.MessageAttributes = attrs
			rm.MD5OfMessageAttributes = attributesMD5(attrs)
		}
		out = append(out, rm)
	}
	return out, next, q.changed
}

func (s *SQS) systemAttributes(m *sqsMessage, names []string) map[string]string {
	all := map[string]string{
		"SenderId":                         s.account,
		"SentTimestamp":                    strconv.FormatInt(m.sent.UnixMilli(), 10),
		"ApproximateReceiveCount":          strconv.Itoa(m.receiveCount),
		"ApproximateFirstReceiveTimestamp": strconv.FormatInt(m.firstReceive.UnixMilli(), 10),
	}
	out := map[string]string{}
	for _, n := range names {
		if n == "All" {
			return all
		}
		if v, ok := all[n]; ok {
			out[n] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// selectAttributes keeps the message attributes asked for by name, by
// prefix ("name.*") or all of them ("All", ".*").
func selectAttributes(attrs map[string]sqsAttributeValue, names []string) map[string]sqsAttributeValue {
	out := map[string]sqsAttributeValue{}
	for _, n := range names {
		for k, v := range attrs {
			if n == "All" || n == ".*" || n == k || (strings.HasSuffix(n, ".*") && strings.HasPrefix(k, strings.TrimSuffix(n, "*"))) {
				out[k] = v
			}
		}
	}
	return out
}

// newReceipt issues a receipt handle for one receive of a message.
func (s *SQS) newReceipt(q *sqsQueue, m *sqsMessage) string {
	nonce := make([]byte, 12)
	_, _ = rand.Read(nonce)
	handle := base64.StdEncoding.EncodeToString([]byte(q.name + "/" + m.id + "/" + hex.EncodeToString(nonce)))
	s.receipts[handle] = m.id
	return handle
}

func (s *SQS) apiDeleteMessage(in deleteMessageInput) *sqsError {
	if in.ReceiptHandle == nil {
		return errMissingParameter("ReceiptHandle")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, apiErr := s.queueOf(in.QueueURL)
	if apiErr != nil {
		return apiErr
	}
	id, ok := s.receipts[*in.ReceiptHandle]
	if !ok {
		return errInvalidReceipt(*in.ReceiptHandle)
	}
	// As SQS: deleting with any receipt handle of the message deletes it,
	// and deleting a message already deleted succeeds.
	for i, m := range q.messages {
		if m.id == id {
			q.messages = append(q.messages[:i], q.messages[i+1:]...)
			break
		}
	}
	return nil
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// errSQSDisabled is returned by the Cloud's event methods without a queue.
var errSQSDisabled = errors.New("the simulated cloud has no SQS queue: set cloudsim.Options.SQSQueue")
