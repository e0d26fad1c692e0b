package wire

import "fmt"

// Every capability import answers with an envelope: a string error, then, when the error is empty, the
// capability's own answer. A refusal (the capability is not granted, a key over its size, a quota reached) or a
// failure (a timeout, a relay that hung up) is an error in the envelope, never a trap.

// EncodeAnswer appends an envelope carrying ok's encoding (when err is empty) to w.
func EncodeAnswer(w *Writer, errText string, ok func(*Writer)) {
	w.String(errText)
	if errText == "" && ok != nil {
		ok(w)
	}
}

// OpenAnswer reads an envelope's error and returns a reader over the answer that follows. The error is non-empty
// when the host refused or failed the request; the reader is then at its end.
func OpenAnswer(b []byte) (errText string, r *Reader, err error) {
	r = NewFieldReader(b)
	errText = r.String()
	if r.Err() != nil {
		return "", nil, r.Err()
	}
	if errText != "" {
		if err := r.End(); err != nil {
			return "", nil, err
		}
	}
	return errText, r, nil
}

// SecretRequest asks for the value of a secret config field: one the plugin's manifest declares with secret set.
type SecretRequest struct {
	Name string
}

// Encode appends the request's encoding to w.
func (q *SecretRequest) Encode(w *Writer) { w.String(q.Name) }

// DecodeSecretRequest decodes a SecretRequest and checks nothing follows it.
func DecodeSecretRequest(b []byte) (SecretRequest, error) {
	r := NewFieldReader(b)
	q := SecretRequest{Name: r.String()}
	return q, r.End()
}

// SecretAnswer is the secret's value; Set is false when the operator left the optional field out.
type SecretAnswer struct {
	Set   bool
	Value string
}

// Encode appends the answer's encoding to w.
func (a *SecretAnswer) Encode(w *Writer) {
	w.Bool(a.Set)
	w.String(a.Value)
}

// DecodeSecretAnswer reads a SecretAnswer from r and checks nothing follows it.
func DecodeSecretAnswer(r *Reader) (SecretAnswer, error) {
	a := SecretAnswer{Set: r.Bool(), Value: r.String()}
	return a, r.End()
}

// MetricRequest records one observation of a metric the plugin's manifest declares: Value is added to a counter,
// or observed by a histogram. Labels must be exactly the label names the manifest declares for it.
type MetricRequest struct {
	Name   string
	Value  float64
	Labels Pairs
}

// Encode appends the request's encoding to w.
func (q *MetricRequest) Encode(w *Writer) {
	w.String(q.Name)
	w.F64(q.Value)
	w.Pairs(q.Labels)
}

// DecodeMetricRequest decodes a MetricRequest and checks nothing follows it.
func DecodeMetricRequest(b []byte) (MetricRequest, error) {
	r := NewFieldReader(b)
	q := MetricRequest{Name: r.String(), Value: r.F64(), Labels: r.Pairs()}
	return q, r.End()
}

// SMTPRequest is one message to send through the SMTP relay the operator granted. Data is the whole RFC 5322
// message, headers included, with CRLF line ends; the host adds nothing but the relay's own trace headers.
type SMTPRequest struct {
	From string   // the envelope sender (MAIL FROM); "" for a null reverse-path (bounces)
	To   []string // the envelope recipients (RCPT TO)
	Data []byte
}

// Encode appends the request's encoding to w.
func (q *SMTPRequest) Encode(w *Writer) {
	w.String(q.From)
	w.U32(uint32(len(q.To)))
	for _, to := range q.To {
		w.String(to)
	}
	w.Bytes32(q.Data)
}

// DecodeSMTPRequest decodes an SMTPRequest and checks nothing follows it.
func DecodeSMTPRequest(b []byte) (SMTPRequest, error) {
	r := NewFieldReader(b)
	q := decodeSMTPRequest(r)
	return q, r.End()
}

func decodeSMTPRequest(r *Reader) SMTPRequest {
	q := SMTPRequest{From: r.String()}
	if n := r.Count(4); n > 0 {
		q.To = make([]string, n)
		for i := range q.To {
			q.To[i] = r.String()
		}
	}
	q.Data = append([]byte(nil), r.Bytes32()...)
	return q
}

// MaxSMTPBatch is the most messages one SMTPBatchRequest may hold.
const MaxSMTPBatch = 1000

// SMTPBatchRequest is several messages for the relay at once (import smtp_batch): the host sends them at the same
// time over its pool of connections, and answers each.
type SMTPBatchRequest struct {
	Messages []SMTPRequest
}

// Encode appends the request's encoding to w.
func (q *SMTPBatchRequest) Encode(w *Writer) {
	w.U32(uint32(len(q.Messages)))
	for i := range q.Messages {
		q.Messages[i].Encode(w)
	}
}

// DecodeSMTPBatchRequest decodes an SMTPBatchRequest of at most MaxSMTPBatch messages and checks nothing follows.
func DecodeSMTPBatchRequest(b []byte) (SMTPBatchRequest, error) {
	r := NewFieldReader(b)
	n := r.Count(12)
	if n > MaxSMTPBatch {
		return SMTPBatchRequest{}, fmt.Errorf("a batch of %d messages is over the limit of %d", n, MaxSMTPBatch)
	}
	q := SMTPBatchRequest{Messages: make([]SMTPRequest, n)}
	for i := range q.Messages {
		q.Messages[i] = decodeSMTPRequest(r)
	}
	return q, r.End()
}

// SMTPBatchItem is the outcome of one message of a batch: Error is what the smtp import would have answered in its
// envelope ("smtp 451 ...", "smtp: ..."), or empty, and then Answer is the relay's.
type SMTPBatchItem struct {
	Error  string
	Answer SMTPAnswer
}

// SMTPBatchAnswer holds one item per message of the request, in its order.
type SMTPBatchAnswer struct {
	Items []SMTPBatchItem
}

// Encode appends the answer's encoding to w.
func (a *SMTPBatchAnswer) Encode(w *Writer) {
	w.U32(uint32(len(a.Items)))
	for i := range a.Items {
		w.String(a.Items[i].Error)
		if a.Items[i].Error == "" {
			a.Items[i].Answer.Encode(w)
		}
	}
}

// DecodeSMTPBatchAnswer reads an SMTPBatchAnswer from r and checks nothing follows it.
func DecodeSMTPBatchAnswer(r *Reader) (SMTPBatchAnswer, error) {
	var a SMTPBatchAnswer
	if n := r.Count(4); n > 0 {
		a.Items = make([]SMTPBatchItem, n)
		for i := range a.Items {
			if a.Items[i].Error = r.String(); a.Items[i].Error == "" {
				a.Items[i].Answer = decodeSMTPAnswer(r)
			}
		}
	}
	return a, r.End()
}

// SMTPAnswer is the relay's answer to a message the host could hand over: Code and Message are the reply to the
// end of DATA (250 when accepted). Rejected lists recipients the relay refused at RCPT TO; the message went to the
// others. A relay that could not be reached, or refused the message as a whole, is an envelope error instead,
// starting "smtp 4xx" or "smtp 5xx" when the relay said so (4xx: try again later; 5xx: do not).
type SMTPAnswer struct {
	Code     uint32
	Message  string
	Rejected []SMTPRejection
}

// SMTPRejection is a recipient refused by the relay, with its reply.
type SMTPRejection struct {
	Recipient string
	Code      uint32
	Message   string
}

// Encode appends the answer's encoding to w.
func (a *SMTPAnswer) Encode(w *Writer) {
	w.U32(a.Code)
	w.String(a.Message)
	w.U32(uint32(len(a.Rejected)))
	for _, rj := range a.Rejected {
		w.String(rj.Recipient)
		w.U32(rj.Code)
		w.String(rj.Message)
	}
}

// DecodeSMTPAnswer reads an SMTPAnswer from r and checks nothing follows it.
func DecodeSMTPAnswer(r *Reader) (SMTPAnswer, error) {
	a := decodeSMTPAnswer(r)
	return a, r.End()
}

func decodeSMTPAnswer(r *Reader) SMTPAnswer {
	a := SMTPAnswer{Code: r.U32(), Message: r.String()}
	if n := r.Count(12); n > 0 {
		a.Rejected = make([]SMTPRejection, n)
		for i := range a.Rejected {
			a.Rejected[i] = SMTPRejection{Recipient: r.String(), Code: r.U32(), Message: r.String()}
		}
	}
	return a
}

// KVOpKind is what one key-value operation does.
type KVOpKind uint8

// The key-value operations.
const (
	KVGet            KVOpKind = 1 // read Key
	KVPut            KVOpKind = 2 // set Key to Value
	KVDelete         KVOpKind = 3 // remove Key (absent is fine)
	KVCompareAndSwap KVOpKind = 4 // set Key to Value only if it now holds Expect (ExpectPresent) or is absent (!ExpectPresent)
	KVList           KVOpKind = 5 // the keys starting with Key, in byte order, after After, at most Limit
)

// Valid reports whether k is a defined operation.
func (k KVOpKind) Valid() bool { return k >= KVGet && k <= KVList }

// String names the operation.
func (k KVOpKind) String() string {
	switch k {
	case KVGet:
		return "get"
	case KVPut:
		return "put"
	case KVDelete:
		return "delete"
	case KVCompareAndSwap:
		return "compare-and-swap"
	case KVList:
		return "list"
	}
	return fmt.Sprintf("kv-op(%d)", uint8(k))
}

// KVOp is one operation of a KVRequest.
type KVOp struct {
	Kind          KVOpKind
	Key           string // the key; the prefix for KVList
	Value         []byte // KVPut, KVCompareAndSwap
	ExpectPresent bool   // KVCompareAndSwap: whether the key must exist (holding Expect) or be absent
	Expect        []byte // KVCompareAndSwap
	After         string // KVList: start after this key ("" from the first)
	Limit         uint32 // KVList: at most this many entries (0: the host's default)
}

// KVRequest is a list of operations run as one transaction in the calling workspace's space of the plugin: each
// operation sees the writes of those before it, and the writes are applied together, or not at all when a
// compare-and-swap fails or the quota would be exceeded.
type KVRequest struct {
	Ops []KVOp
}

// Encode appends the request's encoding to w.
func (q *KVRequest) Encode(w *Writer) {
	w.U32(uint32(len(q.Ops)))
	for i := range q.Ops {
		op := &q.Ops[i]
		w.U8(uint8(op.Kind))
		w.String(op.Key)
		w.Bytes32(op.Value)
		w.Bool(op.ExpectPresent)
		w.Bytes32(op.Expect)
		w.String(op.After)
		w.U32(op.Limit)
	}
}

// DecodeKVRequest decodes a KVRequest and checks nothing follows it.
func DecodeKVRequest(b []byte) (KVRequest, error) {
	r := NewFieldReader(b)
	var q KVRequest
	if n := r.Count(22); n > 0 {
		q.Ops = make([]KVOp, n)
		for i := range q.Ops {
			op := &q.Ops[i]
			op.Kind = KVOpKind(r.U8())
			op.Key = r.String()
			op.Value = append([]byte(nil), r.Bytes32()...)
			op.ExpectPresent = r.Bool()
			op.Expect = append([]byte(nil), r.Bytes32()...)
			op.After = r.String()
			op.Limit = r.U32()
			if r.Err() == nil && !op.Kind.Valid() {
				r.Fail(fmt.Errorf("wire: kv operation %d has unknown kind %d", i, uint8(op.Kind)))
			}
		}
	}
	return q, r.End()
}

// KVResult is the outcome of one operation, in the order of the request.
type KVResult struct {
	// OK is whether the key was found (get), or the swap happened (compare-and-swap); true for put, delete, list.
	OK      bool
	Value   []byte    // get: the value
	Entries []KVEntry // list: the entries, in key order
	Next    string    // list: pass as After to continue; "" when there is nothing more
}

// KVEntry is a key and its value.
type KVEntry struct {
	Key   string
	Value []byte
}

// KVAnswer holds one result per operation, or, when a compare-and-swap failed, the results up to and including
// it: nothing was written.
type KVAnswer struct {
	Results []KVResult
}

// Encode appends the answer's encoding to w.
func (a *KVAnswer) Encode(w *Writer) {
	w.U32(uint32(len(a.Results)))
	for i := range a.Results {
		res := &a.Results[i]
		w.Bool(res.OK)
		w.Bytes32(res.Value)
		w.U32(uint32(len(res.Entries)))
		for _, e := range res.Entries {
			w.String(e.Key)
			w.Bytes32(e.Value)
		}
		w.String(res.Next)
	}
}

// DecodeKVAnswer reads a KVAnswer from r and checks nothing follows it.
func DecodeKVAnswer(r *Reader) (KVAnswer, error) {
	var a KVAnswer
	if n := r.Count(13); n > 0 {
		a.Results = make([]KVResult, n)
		for i := range a.Results {
			res := &a.Results[i]
			res.OK = r.Bool()
			res.Value = append([]byte(nil), r.Bytes32()...)
			if m := r.Count(8); m > 0 {
				res.Entries = make([]KVEntry, m)
				for j := range res.Entries {
					res.Entries[j] = KVEntry{Key: r.String(), Value: append([]byte(nil), r.Bytes32()...)}
				}
			}
			res.Next = r.String()
		}
	}
	return a, r.End()
}
