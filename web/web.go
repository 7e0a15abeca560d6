// Package web is the public web face (H5): the html/template pages a citizen uses to
// report, to follow up with a receipt code, and to read an organization's page (一社一码),
// with their static files (one stylesheet, one small script) and the view models the
// pages are rendered from. Everything is embedded in the binary, so `go run
// ./cmd/qingfeng` serves the pages with no build step.
//
// It renders and nothing else: no HTTP (handlers serves the pages, sets the headers and
// checks the forms), no domain package, no logic in templates beyond loops and
// conditionals — handlers hand it view models with every text already worded. Every
// page works with JavaScript off; the script only enhances (upload progress, the
// division picker, the proof of work). Nothing on a page refers to another origin.
package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io"
	"io/fs"
)

//go:embed templates/*.html templates/console/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Static is the tree served under /static/: site.css and site.js.
func Static() fs.FS {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // the directory is embedded
	}
	return sub
}

// pageNames are the pages; each is templates/<name>.html rendered inside layout.html.
var pageNames = []string{"home", "about", "report", "receipt", "followup_login", "followup_case", "org", "notfound", "error"}

// Pages holds the parsed templates.
type Pages struct {
	t map[string]*template.Template
}

// Parse parses every page; it fails only if an embedded template is broken, which the
// package's tests catch.
func Parse() (*Pages, error) {
	p := &Pages{t: map[string]*template.Template{}}
	for _, name := range pageNames {
		t, err := template.New("layout.html").ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse page %s: %w", name, err)
		}
		p.t[name] = t
	}
	for _, name := range consolePageNames {
		t, err := template.New("layout.html").ParseFS(templateFS, "templates/layout.html", "templates/console/base.html", "templates/console/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse console page %s: %w", name, err)
		}
		p.t["console/"+name] = t
	}
	return p, nil
}

// MustParse is Parse for start-up.
func MustParse() *Pages {
	p, err := Parse()
	if err != nil {
		panic(err)
	}
	return p
}

// Render writes page name with data. It renders into a buffer first, so that a
// template error never sends half a page.
func (p *Pages) Render(w io.Writer, name string, data any) error {
	t, ok := p.t[name]
	if !ok {
		return fmt.Errorf("no page %q", name)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return fmt.Errorf("render page %s: %w", name, err)
	}
	_, err := w.Write(b.Bytes())
	return err
}
