package admin

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/crosscast/crosscast/core/auth"
	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/imports"
	"github.com/crosscast/crosscast/core/jobs"
	"github.com/gofiber/fiber/v2"
)

// Jobs runs and reports background jobs (contact imports); *jobs.Runner implements it.
type Jobs interface {
	// NewInput creates an empty file, in the runner's directory under the data dir, to spool a job's input into.
	NewInput() (*os.File, error)
	// Submit queues a job on input, which the runner owns from then on.
	Submit(ctx context.Context, j jobs.Job, input string, fn jobs.Func) (jobs.Job, error)
	Get(ctx context.Context, id string) (jobs.Job, error)
	List(ctx context.Context, ws, before string, limit int) ([]jobs.Job, string, error)
	Cancel(ctx context.Context, id string) (jobs.Job, error)
}

var _ Jobs = (*jobs.Runner)(nil)

// KindImport is the kind of contact import jobs.
const KindImport = "contacts.import"

// defaultMaxImport is server.max_import's default, for servers built without it (tests).
const defaultMaxImport = 4 << 30

const localBodyRead = "body_read"

func (s *Server) importRoutes(api fiber.Router) {
	api.Post("/workspaces/:id/contacts/import", s.importContacts)
	api.Get("/workspaces/:id/contacts/export", s.exportContacts)
	api.Get("/workspaces/:id/jobs", s.listJobs)
	api.Get("/jobs/:job", s.getJob)
	api.Delete("/jobs/:job", s.cancelJob)
}

// limitBodies holds every request but a contact import to server.max_body. Request bodies stream (fiber's
// StreamRequestBody, so that an import never sits in memory), and fasthttp then leaves the limit to the
// application: without this, c.Body() would read a body of any size. A declared length over the limit is refused
// before reading; a chunked body is read up to the limit. Refusals close the connection, since the unread rest of
// the body cannot be told from a next request.
func (s *Server) limitBodies(c *fiber.Ctx) error {
	if isImportRequest(c) {
		err := c.Next()
		if c.Locals(localBodyRead) == nil && c.Request().Header.ContentLength() != 0 {
			// Refused before its body was read (401, 403, 400 on a bad mapping...).
			refuseBody(c)
		}
		return err
	}
	req := c.Request()
	limit := s.opts.MaxBody
	switch n := req.Header.ContentLength(); {
	case int64(n) > limit:
		refuseBody(c)
		return fiber.ErrRequestEntityTooLarge
	case n == -1: // chunked: the length is known once read
		if stream := req.BodyStream(); stream != nil {
			body, err := io.ReadAll(io.LimitReader(stream, limit+1))
			if err != nil {
				c.Context().SetConnectionClose()
				return fiber.NewError(http.StatusBadRequest, "reading the request body: "+err.Error())
			}
			if int64(len(body)) > limit {
				refuseBody(c)
				return fiber.ErrRequestEntityTooLarge
			}
			req.SetBodyRaw(body)
		}
	}
	return c.Next()
}

// drainCap bounds how much of a refused body is read and thrown away (net/http reads 256 KiB too).
const drainCap = 256 << 10

// refuseBody closes the connection of a request whose body will not be used, after reading and throwing away up
// to drainCap bytes of what is still to come: a client still sending a body it is refused would otherwise meet a
// reset (the server closing with unread data) and lose the answer. A longer rest is not read: that client meets
// the reset, as with any server.
func refuseBody(c *fiber.Ctx) {
	c.Context().SetConnectionClose()
	if stream := c.Request().BodyStream(); stream != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(stream, drainCap))
	}
}

// isImportRequest tells the import route from the others before routing, the way the router matches it (any case,
// with or without a trailing slash). A path taken for an import by mistake only skips the max_body check on a
// route that never reads the body (404, 405).
func isImportRequest(c *fiber.Ctx) bool {
	if c.Method() != fiber.MethodPost {
		return false
	}
	p := strings.TrimSuffix(strings.ToLower(c.Path()), "/")
	rest, ok := strings.CutPrefix(p, "/api/v1/workspaces/")
	if !ok {
		return false
	}
	ws, tail, ok := strings.Cut(rest, "/")
	return ok && ws != "" && tail == "contacts/import"
}

func (s *Server) jobsService() (Jobs, error) {
	if s.deps.Jobs == nil {
		return nil, fmt.Errorf("background jobs are not run by this server: %w", errs.ErrUnavailable)
	}
	return s.deps.Jobs, nil
}

func (s *Server) importLimit() int64 {
	if s.opts.MaxImport > 0 {
		return s.opts.MaxImport
	}
	return defaultMaxImport
}

// importContacts spools the request body (CSV or JSON Lines) to a file under the data dir, counting its rows on the
// way, checks its header and mapping, and queues an import job: 202 {"job": {...}} with Location /api/v1/jobs/{id}.
func (s *Server) importContacts(c *fiber.Ctx) error {
	runner, err := s.jobsService()
	if err != nil {
		return err
	}
	ws, svc, err := s.contactScope(c, auth.RoleEditor)
	if err != nil {
		return err
	}
	// fiber's strings point into buffers it reuses once the handler returns; the job outlives it.
	ws = strings.Clone(ws)
	opts, params, err := importOptions(c)
	if err != nil {
		return err
	}
	settings, err := svc.Settings(c.UserContext(), ws)
	if err != nil {
		return err
	}
	opts.Channels = settings.Channels
	gz, err := contentEncoding(c)
	if err != nil {
		return err
	}
	limit := s.importLimit()
	if n := c.Request().Header.ContentLength(); int64(n) > limit && !gz {
		return s.importTooLarge(c, limit)
	}

	f, err := runner.NewInput()
	if err != nil {
		return err
	}
	submitted := false
	defer func() {
		if !submitted {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	counter := imports.NewCounter(opts.Format)
	n, err := s.spool(c, f, counter, limit, gz)
	c.Locals(localBodyRead, true)
	switch {
	case errors.Is(err, errTooLarge):
		return s.importTooLarge(c, limit)
	case err != nil:
		c.Context().SetConnectionClose()
		return err
	case n == 0:
		return errs.Invalid("body", "the upload is empty: send the CSV or JSON Lines file as the request body")
	}
	// Read the header now: a wrong mapping or a file without an identifier column is answered at once, not by a
	// job that fails later.
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	rd, err := imports.NewReader(f, opts)
	if err != nil {
		return err
	}
	if cols := rd.Columns(); cols != nil {
		params["columns"] = map[string]string(cols)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing the spooled upload: %w", err)
	}
	submitted = true // the runner owns the file from here, even when Submit fails
	j, err := runner.Submit(c.UserContext(), jobs.Job{
		Workspace: ws, Kind: KindImport, Params: params, CreatedBy: strings.Clone(principal(c).TokenID), Total: counter.Rows(),
	}, f.Name(), importJob(svc, ws, opts))
	if err != nil {
		return err
	}
	s.log.Info("contact import queued", "request_id", requestID(c), "workspace", ws, "job", j.ID, "bytes", n, "rows", j.Total)
	c.Location("/api/v1/jobs/" + j.ID)
	return c.Status(http.StatusAccepted).JSON(fiber.Map{"job": s.jobView(c, j)})
}

// importJob is the work of an import job: read the spooled file and upsert its rows.
func importJob(svc *contacts.Service, ws string, opts imports.Options) jobs.Func {
	return func(ctx context.Context, input string, p *jobs.Progress) error {
		f, err := os.Open(input)
		if err != nil {
			return fmt.Errorf("opening the spooled upload: %w", err)
		}
		defer f.Close()
		rd, err := imports.NewReader(f, opts)
		if err != nil {
			return err
		}
		return imports.Run(ctx, svc, ws, rd, p, imports.DefaultChunk)
	}
}

// importOptions reads ?format= (or the Content-Type), ?delimiter= and ?mapping=, and the job parameters to show.
func importOptions(c *fiber.Ctx) (imports.Options, map[string]any, error) {
	v := &errs.ValidationError{}
	format, err := imports.FormatFrom(c.Query("format"), c.Get(fiber.HeaderContentType))
	addProblems(v, err)
	delim, err := imports.ParseDelimiter(c.Query("delimiter"))
	addProblems(v, err)
	mapping, err := imports.ParseMapping(c.Query("mapping"))
	addProblems(v, err)
	if format == imports.JSONL && (mapping != nil || delim != 0) {
		v.Add("format", "mapping and delimiter apply to CSV; a JSON Lines row names its fields itself")
	}
	if err := v.OrNil(); err != nil {
		return imports.Options{}, nil, err
	}
	params := map[string]any{"format": string(format)}
	if delim != 0 {
		params["delimiter"] = string(delim)
	}
	if mapping != nil {
		params["mapping"] = map[string]string(mapping)
	}
	return imports.Options{Format: format, Delimiter: delim, Mapping: mapping}, params, nil
}

func addProblems(v *errs.ValidationError, err error) {
	var ve *errs.ValidationError
	if errors.As(err, &ve) {
		v.Fields = append(v.Fields, ve.Fields...)
	} else if err != nil {
		v.Add("", "%s", err)
	}
}

// contentEncoding accepts an identity or gzip upload (a CSV compresses about tenfold).
func contentEncoding(c *fiber.Ctx) (bool, error) {
	switch enc := strings.ToLower(strings.TrimSpace(c.Get(fiber.HeaderContentEncoding))); enc {
	case "", "identity":
		return false, nil
	case "gzip", "x-gzip":
		return true, nil
	default:
		return false, errs.Invalid("Content-Encoding", "%q is not supported: send the file as is or gzip-compressed", enc)
	}
}

var errTooLarge = errors.New("upload too large")

// spool copies the request body, gunzipped if gz, into f and through counter; it reads at most limit bytes (of
// the uncompressed upload) and fails with errTooLarge beyond. The connection's read deadline moves forward with
// every read, so that a long upload at a steady pace completes while a stalled client still times out.
func (s *Server) spool(c *fiber.Ctx, f *os.File, counter io.Writer, limit int64, gz bool) (int64, error) {
	var body io.Reader = c.Request().BodyStream()
	if body == nil {
		body = bytes.NewReader(c.Request().Body())
	}
	raw := &readDeadline{r: body, conn: c.Context().Conn(), timeout: s.opts.ReadTimeout}
	body = raw
	if gz {
		zr, err := gzip.NewReader(body)
		if err != nil {
			return 0, errs.Invalid("body", "the body is not gzip data, as Content-Encoding says: %s", err)
		}
		defer zr.Close()
		body = zr
	}
	w := bufio.NewWriterSize(io.MultiWriter(f, counter), 256<<10)
	n, err := io.Copy(w, io.LimitReader(body, limit+1))
	if err != nil {
		var pathErr *os.PathError
		if errors.As(err, &pathErr) {
			return n, fmt.Errorf("spooling the upload: %w", err) // the disk, not the client
		}
		if gz && raw.err == nil {
			// The connection was fine: the compressed data is not.
			return n, errs.Invalid("body", "the gzip data is corrupt after %d bytes: %s", n, err)
		}
		return n, fmt.Errorf("reading the upload after %d bytes: %v: %w", n, err, errClient)
	}
	if n > limit {
		return n, errTooLarge
	}
	if err := w.Flush(); err != nil {
		return n, fmt.Errorf("spooling the upload: %w", err)
	}
	return n, nil
}

// errClient marks an upload the client broke off; it answers 400 (the client may well be gone).
var errClient = fiber.NewError(http.StatusBadRequest, "the upload was cut off")

// readDeadline reads the request body, moving the connection's read deadline forward before every read; err keeps
// the first read error other than io.EOF.
type readDeadline struct {
	r       io.Reader
	conn    net.Conn
	timeout time.Duration
	err     error
}

func (r *readDeadline) Read(p []byte) (int, error) {
	if r.conn != nil && r.timeout > 0 {
		_ = r.conn.SetReadDeadline(time.Now().Add(r.timeout))
	}
	n, err := r.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && r.err == nil {
		r.err = err
	}
	return n, err
}

// importTooLarge refuses an upload over server.max_import (413 body_too_large, naming that limit).
func (s *Server) importTooLarge(c *fiber.Ctx, limit int64) error {
	refuseBody(c)
	return fiber.NewError(http.StatusRequestEntityTooLarge,
		fmt.Sprintf("the upload is larger than server.max_import (%d bytes); split the file or raise the limit", limit))
}

// exportContacts streams every contact of the workspace as CSV (default) or JSON Lines (?format=jsonl). A CSV
// export reads the contacts twice: once to learn the attribute columns, once to write them; ?attributes=a,b names
// the attribute columns and skips the first pass. Callers without PII permission get values masked as in the
// contacts API. The response streams under the server's base context: an export stopped half-way (shutdown, a
// store error) ends without the final chunk, so the client sees a broken transfer rather than a short file.
func (s *Server) exportContacts(c *fiber.Ctx) error {
	ws, svc, err := s.contactScope(c, auth.RoleViewer)
	if err != nil {
		return err
	}
	ws = strings.Clone(ws) // the export outlives the handler, and fiber reuses the buffers its strings point into
	var format imports.Format
	switch strings.ToLower(c.Query("format", "csv")) {
	case "csv":
		format = imports.CSV
	case "jsonl", "ndjson":
		format = imports.JSONL
	default:
		return errs.Invalid("format", "%q is not an export format: use csv or jsonl", c.Query("format"))
	}
	var attrs []string
	if list := c.Query("attributes"); list != "" {
		for _, a := range strings.Split(list, ",") {
			if a = strings.TrimSpace(a); a != "" {
				attrs = append(attrs, a)
			}
		}
	}
	mask, _, err := s.masker(c, svc, ws)
	if err != nil {
		return err
	}
	settings, err := svc.Settings(c.UserContext(), ws)
	if err != nil {
		return err
	}
	name := fmt.Sprintf("contacts-%s-%s.%s", ws, time.Now().UTC().Format("20060102T150405Z"), format)
	if format == imports.CSV {
		c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	} else {
		c.Set(fiber.HeaderContentType, "application/x-ndjson")
	}
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+name+`"`)

	ctx, cancel := context.WithCancel(s.base)
	pr, pw := io.Pipe()
	id := strings.Clone(requestID(c))
	go func() {
		bw := bufio.NewWriterSize(pw, 64<<10)
		err := writeExport(ctx, bw, svc, ws, format, settings.Channels, attrs, mask)
		if err == nil {
			err = bw.Flush()
		}
		if err != nil && !errors.Is(err, errExportClosed) {
			s.log.Warn("contact export stopped", "request_id", id, "workspace", ws, "error", err)
		}
		_ = pw.CloseWithError(err) // nil ends the body
	}()
	conn := c.Context().Conn()
	body := &exportStream{r: pr, cancel: cancel, conn: conn, timeout: s.writeTimeout}
	if conn != nil {
		body.stop = context.AfterFunc(ctx, func() { _ = conn.SetWriteDeadline(time.Now()) })
	}
	c.Context().SetBodyStream(body, -1)
	s.log.Info("contact export started", "request_id", id, "workspace", ws, "format", format)
	return nil
}

func writeExport(ctx context.Context, w io.Writer, svc *contacts.Service, ws string, format imports.Format,
	channels, attrs []string, mask func(contacts.Contact) contacts.Contact) error {
	if format == imports.JSONL {
		jw := imports.NewJSONLWriter(w)
		return svc.Export(ctx, ws, func(ct contacts.Contact) error { return jw.Write(mask(ct)) })
	}
	if attrs == nil {
		var err error
		if attrs, channels, err = imports.Columns(ctx, svc, ws, channels); err != nil {
			return err
		}
	} else {
		channels = slices.Sorted(slices.Values(channels)) // the same order as with the first pass
	}
	cw, err := imports.NewCSVWriter(w, channels, attrs)
	if err != nil {
		return err
	}
	if err := svc.Export(ctx, ws, func(ct contacts.Contact) error { return cw.Write(mask(ct)) }); err != nil {
		return err
	}
	return cw.Flush()
}

var errExportClosed = errors.New("the export response was closed")

// exportStream feeds the response from the export's pipe, moving the write deadline forward before every chunk:
// a large export to a slow client completes, a client that stops reading is cut off after server.write_timeout.
type exportStream struct {
	r       *io.PipeReader
	cancel  context.CancelFunc
	stop    func() bool
	conn    net.Conn
	timeout time.Duration
}

func (e *exportStream) Read(p []byte) (int, error) {
	if e.conn != nil {
		_ = e.conn.SetWriteDeadline(time.Now().Add(e.timeout))
	}
	return e.r.Read(p)
}

// Close is called by the HTTP server when the response is done or abandoned: it stops the export.
func (e *exportStream) Close() error {
	if e.stop != nil {
		e.stop()
	}
	e.cancel()
	_ = e.r.CloseWithError(errExportClosed)
	return nil
}

// jobVisible checks the caller's right on the job's workspace; a caller scoped to another workspace gets 404.
func jobVisible(c *fiber.Ctx, j jobs.Job, min auth.Role) error {
	p := principal(c)
	if p.Workspace != "" && p.Workspace != j.Workspace {
		return fmt.Errorf("job %q: %w", j.ID, errs.ErrNotFound)
	}
	return p.Require(min, j.Workspace)
}

// quoted finds the values that row error messages quote ("x" is not a valid email address).
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// jobView is the job as the caller may see it: row errors quote the rows' values, which callers without PII
// permission see masked.
func (s *Server) jobView(c *fiber.Ctx, j jobs.Job) jobs.Job {
	if principal(c).SeesPII() {
		return j
	}
	rows := make([]jobs.RowError, len(j.Errors))
	for i, e := range j.Errors {
		e.Message = quoted.ReplaceAllString(e.Message, `"`+contacts.Masked+`"`)
		rows[i] = e
	}
	j.Errors = rows
	return j
}

func (s *Server) getJob(c *fiber.Ctx) error {
	runner, err := s.jobsService()
	if err != nil {
		return err
	}
	j, err := runner.Get(c.UserContext(), c.Params("job"))
	if err != nil {
		return err
	}
	if err := jobVisible(c, j, auth.RoleViewer); err != nil {
		return err
	}
	return c.JSON(s.jobView(c, j))
}

// cancelJob cancels a queued or running job (editors of its workspace); 409 once it has finished.
func (s *Server) cancelJob(c *fiber.Ctx) error {
	runner, err := s.jobsService()
	if err != nil {
		return err
	}
	j, err := runner.Get(c.UserContext(), c.Params("job"))
	if err != nil {
		return err
	}
	if err := jobVisible(c, j, auth.RoleEditor); err != nil {
		return err
	}
	j, err = runner.Cancel(c.UserContext(), j.ID)
	if err != nil {
		return err
	}
	return c.Status(http.StatusAccepted).JSON(s.jobView(c, j))
}

func (s *Server) listJobs(c *fiber.Ctx) error {
	runner, err := s.jobsService()
	if err != nil {
		return err
	}
	ws, err := s.existingWorkspace(c, auth.RoleViewer)
	if err != nil {
		return err
	}
	cursor, limit, err := pageParams(c)
	if err != nil {
		return err
	}
	if cursor != "" && !jobs.ValidID(cursor) {
		return errs.Invalid("cursor", "is not a cursor this API returned")
	}
	items, next, err := runner.List(c.UserContext(), ws, cursor, limit)
	if err != nil {
		return err
	}
	for i := range items {
		items[i] = s.jobView(c, items[i])
	}
	return c.JSON(newList(items, next))
}
