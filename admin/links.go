package admin

import (
	"errors"
	"html/template"
	"strings"

	"github.com/crosscast/crosscast/core/campaigns"
	"github.com/gofiber/fiber/v2"
)

// The public side of messages' signed links (core/campaigns Links), served without a token on
// server.public_url: the unsubscribe page and RFC 8058's one-click unsubscribe, the open pixel, tracked clicks.
func (s *Server) linkRoutes(app *fiber.App) {
	app.Get("/u/:ws/:msg/:sig", s.unsubscribePage)
	app.Post("/u/:ws/:msg/:sig", s.unsubscribePost)
	app.Get("/o/:ws/:msg/:sig", s.openPixel)
	app.Get("/c/:ws/:msg/:sig", s.click)
}

// pixel is a transparent 1x1 GIF.
var pixel = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

func (s *Server) openPixel(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	sig, ok := strings.CutSuffix(c.Params("sig"), ".gif")
	if s.deps.Campaigns == nil || !ok {
		return c.SendStatus(fiber.StatusNotFound)
	}
	err := s.deps.Campaigns.Opened(c.UserContext(), strings.Clone(c.Params("ws")), strings.Clone(c.Params("msg")), sig)
	switch {
	case errors.Is(err, campaigns.ErrBadLink):
		return c.SendStatus(fiber.StatusNotFound)
	case err != nil:
		s.log.Warn("recording an open", "error", err)
	}
	c.Type("gif")
	return c.Send(pixel)
}

func (s *Server) click(c *fiber.Ctx) error {
	if s.deps.Campaigns == nil {
		return linkPage(c, fiber.StatusNotFound, "This link is not valid.", "")
	}
	target := string(c.Request().URI().QueryArgs().Peek("u")) // decoded once by fasthttp, as Links.Click encoded it
	to, err := s.deps.Campaigns.Clicked(c.UserContext(), strings.Clone(c.Params("ws")), strings.Clone(c.Params("msg")), c.Params("sig"), target)
	switch {
	case errors.Is(err, campaigns.ErrBadLink):
		return linkPage(c, fiber.StatusBadRequest, "This link is not valid.", "It may have been cut or altered.")
	case err != nil:
		// The click is not counted, but the reader still gets where the signed link goes.
		s.log.Warn("recording a click", "error", err)
		if to == "" {
			to = target
		}
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Redirect(to, fiber.StatusFound)
}

func (s *Server) unsubscribePage(c *fiber.Ctx) error {
	if s.deps.Campaigns == nil {
		return linkPage(c, fiber.StatusNotFound, "This link is not valid.", "")
	}
	p, err := s.deps.Campaigns.Preferences(c.UserContext(), strings.Clone(c.Params("ws")), strings.Clone(c.Params("msg")), c.Params("sig"))
	if errors.Is(err, campaigns.ErrBadLink) {
		return linkPage(c, fiber.StatusNotFound, "This link is not valid.", "It may have been cut or altered.")
	}
	if err != nil {
		return err
	}
	c.Type("html", "utf-8")
	c.Set(fiber.HeaderCacheControl, "no-store")
	var b strings.Builder
	if err := preferencesTemplate.Execute(&b, p); err != nil {
		return err
	}
	return c.SendString(b.String())
}

// unsubscribePost is RFC 8058's one-click unsubscribe (a body of List-Unsubscribe=One-Click: the message's channel)
// and the preference page's form (preferences=1 and the channels to keep, keep=email...).
func (s *Server) unsubscribePost(c *fiber.Ctx) error {
	if s.deps.Campaigns == nil {
		return linkPage(c, fiber.StatusNotFound, "This link is not valid.", "")
	}
	args := c.Request().PostArgs()
	var keep, keepTopics []string
	switch {
	case string(args.Peek("preferences")) == "1":
		keep, keepTopics = []string{}, []string{}
		for _, v := range args.PeekMulti("keep") {
			keep = append(keep, string(v))
		}
		for _, v := range args.PeekMulti("topic") {
			keepTopics = append(keepTopics, string(v))
		}
	case string(args.Peek("List-Unsubscribe")) != "One-Click":
		return linkPage(c, fiber.StatusBadRequest, "Nothing was changed.", "Use the unsubscribe button of the page.")
	}
	err := s.deps.Campaigns.Unsubscribe(c.UserContext(), strings.Clone(c.Params("ws")), strings.Clone(c.Params("msg")), c.Params("sig"), keep, keepTopics)
	if errors.Is(err, campaigns.ErrBadLink) {
		return linkPage(c, fiber.StatusNotFound, "This link is not valid.", "It may have been cut or altered.")
	}
	if err != nil {
		return err
	}
	if keep == nil {
		return linkPage(c, fiber.StatusOK, "You are unsubscribed.", "You will not get these messages any more.")
	}
	return linkPage(c, fiber.StatusOK, "Your preferences are saved.", "")
}

func linkPage(c *fiber.Ctx, status int, title, detail string) error {
	c.Type("html", "utf-8")
	c.Set(fiber.HeaderCacheControl, "no-store")
	var b strings.Builder
	if err := messageTemplate.Execute(&b, struct{ Title, Detail string }{title, detail}); err != nil {
		return err
	}
	return c.Status(status).SendString(b.String())
}

const pageStyle = `<style>body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#222}
button{font:inherit;padding:.5rem 1rem;margin-top:1rem}label{display:block;margin:.25rem 0}</style>`

var messageTemplate = template.Must(template.New("message").Parse(`<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>{{.Title}}</title>` + pageStyle + `</head>
<body><h1>{{.Title}}</h1>{{if .Detail}}<p>{{.Detail}}</p>{{end}}</body></html>`))

var preferencesTemplate = template.Must(template.New("preferences").Parse(`<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>Your subscriptions</title>` + pageStyle + `</head>
<body><h1>Your subscriptions</h1>
<p>You got “{{.Campaign}}” by {{.Channel}}{{if .Topic}}, about {{.Topic}}{{end}}.</p>
<form method="post"><input type="hidden" name="preferences" value="1">
<p>Keep getting messages by (untick to unsubscribe):</p>
{{range .Consent}}{{if .Subscribed}}<label><input type="checkbox" name="keep" value="{{.Channel}}" checked> {{.Channel}}</label>
{{end}}{{end}}{{if .Topics}}<p>About:</p>
{{range .Topics}}<label><input type="checkbox" name="topic" value="{{.ID}}"{{if .Subscribed}} checked{{end}}> {{.Name}}</label>
{{end}}{{end}}<button type="submit">Save</button></form>
<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">Unsubscribe from {{if .Topic}}{{.Topic}}{{else}}{{.Channel}}{{end}}</button></form>
</body></html>`))
