package admin

import (
	"bufio"
	"fmt"
	"time"

	"github.com/crosscast/crosscast/core/auth"
	"github.com/gofiber/fiber/v2"
)

// backup streams a consistent snapshot of the whole data dir as tar.gz (see store.Backup); restore it with
// `crosscast restore`. Server-wide owners only.
func (s *Server) backup(c *fiber.Ctx) error {
	if err := principal(c).Require(auth.RoleOwner, ""); err != nil {
		return err
	}
	name := fmt.Sprintf("crosscast-backup-%s.tar.gz", time.Now().UTC().Format("20060102T150405Z"))
	c.Set(fiber.HeaderContentType, "application/gzip")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+name+`"`)
	id := requestID(c)
	conn := c.Context().Conn()
	ctx := s.base
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		// A large data dir takes longer than server.write_timeout to stream; lift the deadline for this response.
		_ = conn.SetWriteDeadline(time.Time{})
		start := time.Now()
		if err := s.deps.Store.Backup(ctx, w); err != nil {
			// The status line is gone already: the archive ends short and restore refuses it.
			s.log.Error("backup failed mid-stream", "request_id", id, "error", err)
			return
		}
		if err := w.Flush(); err != nil {
			s.log.Error("backup: client went away", "request_id", id, "error", err)
			return
		}
		s.log.Info("backup streamed", "request_id", id, "duration", time.Since(start))
	})
	return nil
}
