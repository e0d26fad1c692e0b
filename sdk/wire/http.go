package wire

// HTTPRequest is a plugin's HTTP request through the host's http capability.
type HTTPRequest struct {
	Method  string
	URL     string
	Headers Pairs // one value per name; join repeated values with ", "
	Body    []byte
}

// HTTPResponse is the server's answer. A request the host refused (an origin not granted, a forbidden address, a
// body over its cap) or that failed (timeout, connection refused) has no response: the envelope carries the error.
type HTTPResponse struct {
	Status  uint32
	Headers Pairs
	Body    []byte
}

// Encode appends the request's encoding to w.
func (q *HTTPRequest) Encode(w *Writer) {
	w.String(q.Method)
	w.String(q.URL)
	w.Pairs(q.Headers)
	w.Bytes32(q.Body)
}

// DecodeHTTPRequest decodes an HTTPRequest and checks nothing follows it.
func DecodeHTTPRequest(b []byte) (HTTPRequest, error) {
	r := NewFieldReader(b)
	q := HTTPRequest{Method: r.String(), URL: r.String(), Headers: r.Pairs()}
	q.Body = append([]byte(nil), r.Bytes32()...)
	return q, r.End()
}

// Encode appends the response's encoding to w.
func (p *HTTPResponse) Encode(w *Writer) {
	w.U32(p.Status)
	w.Pairs(p.Headers)
	w.Bytes32(p.Body)
}

// DecodeHTTPResponse reads an HTTPResponse from r and checks nothing follows it.
func DecodeHTTPResponse(r *Reader) (HTTPResponse, error) {
	p := HTTPResponse{Status: r.U32(), Headers: r.Pairs()}
	p.Body = append([]byte(nil), r.Bytes32()...)
	return p, r.End()
}
