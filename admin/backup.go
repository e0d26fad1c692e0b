package admin

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/crosscast/crosscast/core/auth"
	"github.com/gofiber/fiber/v2"
)

// backup streams a consistent snapshot of the whole data dir as tar.gz (see store.Backup); restore it with
// `crosscast restore`. Server-wide owners only.
//
// The archive is spooled first, so the store is free again before the first byte goes out. The stream then has
// a known length and a write deadline per chunk rather than for the whole response: a large backup to a slow
// client completes, a client that stops reading is cut off after server.write_timeout, and shutdown cuts off any
// stream still running.
func (s *Server) backup(c *fiber.Ctx) error {
	if err := principal(c).Require(auth.RoleOwner, ""); err != nil {
		return err
	}
	f, size, err := s.deps.Store.SpoolBackup(c.UserContext())
	if err != nil {
		return err
	}
	name := fmt.Sprintf("crosscast-backup-%s.tar.gz", time.Now().UTC().Format("20060102T150405Z"))
	c.Set(fiber.HeaderContentType, "application/gzip")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+name+`"`)
	c.Set("X-Backup-Bytes", strconv.FormatInt(size, 10))
	conn := c.Context().Conn()
	r := &deadlineReader{f: f, conn: conn, timeout: s.writeTimeout}
	r.stop = context.AfterFunc(s.base, func() { _ = conn.SetWriteDeadline(time.Now()) })
	c.Context().SetBodyStream(r, int(size))
	s.log.Info("backup spooled, streaming", "request_id", requestID(c), "bytes", size)
	return nil
}

// deadlineReader feeds a response body and moves the connection's write deadline forward before every chunk.
type deadlineReader struct {
	f       *os.File
	conn    net.Conn
	timeout time.Duration
	stop    func() bool
}

func (r *deadlineReader) Read(p []byte) (int, error) {
	_ = r.conn.SetWriteDeadline(time.Now().Add(r.timeout))
	return r.f.Read(p)
}

// Close is called by the HTTP server when the response is done or abandoned.
func (r *deadlineReader) Close() error {
	r.stop()
	return r.f.Close()
}
