package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	qingfeng "github.com/qingfeng-zj/qingfeng"
)

type remoteImportArgs struct {
	server, tokenFile string
	what, format      string
	in                io.Reader
	size              int64 // of in, 0 if unknown
	report            *errorReport
	errorsPath        string
}

// remoteImportResult is the route's answer (handlers.importView).
type remoteImportResult struct {
	Read                int `json:"read"`
	Inserted            int `json:"inserted"`
	Updated             int `json:"updated"`
	Rejected            int `json:"rejected"`
	CheckWarnings       int `json:"check_warnings"`
	SeededDefaults      int `json:"seeded_defaults"`
	RejectedRowsOmitted int `json:"rejected_rows_omitted"`
	RejectedRows        []struct {
		Row    int `json:"row"`
		Errors []struct {
			Field   string `json:"field"`
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	} `json:"rejected_rows"`
}

var importContentTypes = map[string]string{"csv": "text/csv", "json": "application/json", "jsonl": "application/x-ndjson"}

// remoteImport sends the file to a running server's import route and reports the
// answer as a local import would; it returns the exit status.
func remoteImport(ctx context.Context, a remoteImportArgs, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintln(stderr, "qingfeng import:", err)
		return 1
	}
	base, err := url.Parse(a.server)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return fail(fmt.Errorf("--server %q is not an http(s) URL", a.server))
	}
	if base.Scheme == "http" && !isLoopbackHost(base.Hostname()) {
		fmt.Fprintf(stderr, "qingfeng import: 警告：%s 未加密（http），令牌将明文传输 / warning: plain http, use https\n", a.server)
	}
	token, err := importToken(a.tokenFile)
	if err != nil {
		return fail(err)
	}
	endpoint := strings.TrimRight(base.Scheme+"://"+base.Host+base.Path, "/") + "/v1/admin/import/" + a.what
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, a.in)
	if err != nil {
		return fail(err)
	}
	if a.size > 0 {
		req.ContentLength = a.size
	}
	req.Header.Set("Content-Type", importContentTypes[a.format])
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept-Language", "zh-CN")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fail(fmt.Errorf("无法连接服务器 / cannot reach the server: %w", err))
	}
	defer resp.Body.Close()
	// The answer lists at most 10,000 rejected rows, each a few hundred bytes.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fail(fmt.Errorf("read the server's answer: %w", err))
	}
	if resp.StatusCode != http.StatusOK {
		return fail(remoteError(resp.StatusCode, body))
	}
	var res remoteImportResult
	if err := json.Unmarshal(body, &res); err != nil {
		return fail(fmt.Errorf("unexpected answer from %s: %w", endpoint, err))
	}
	for _, r := range res.RejectedRows {
		errs := map[string]qingfeng.FieldError{}
		for _, e := range r.Errors {
			errs[e.Field] = qingfeng.FieldError{Code: e.Code, Message: e.Message}
		}
		if a.report != nil {
			if err := a.report.write(r.Row, errs); err != nil {
				return fail(err)
			}
			continue
		}
		for _, e := range r.Errors {
			fmt.Fprintf(stderr, "row %d: %s: %s\n", r.Row, e.Field, e.Message)
		}
	}
	st := fmt.Sprintf("read %d, inserted %d, updated %d, rejected %d", res.Read, res.Inserted, res.Updated, res.Rejected)
	if res.CheckWarnings > 0 {
		st += fmt.Sprintf(", %d credit codes failing their check character (imported)", res.CheckWarnings)
	}
	if res.SeededDefaults > 0 {
		st += fmt.Sprintf("; %d default units loaded first", res.SeededDefaults)
	}
	fmt.Fprintf(stdout, "%s: %s (%.1f s, through %s)\n", a.what, st, time.Since(start).Seconds(), base.Host)
	if res.RejectedRowsOmitted > 0 {
		fmt.Fprintf(stderr, "qingfeng import: the server listed the first %d rejected rows; %d more are not listed\n",
			len(res.RejectedRows), res.RejectedRowsOmitted)
	}
	if res.Rejected > 0 {
		if a.report != nil {
			fmt.Fprintf(stderr, "qingfeng import: %d rows rejected, listed in %s\n", res.Rejected, a.errorsPath)
		}
		return 1
	}
	return 0
}

// importToken is the access token from file (only the token, surrounding space
// ignored) or $QF_TOKEN.
func importToken(file string) (string, error) {
	if file == "" {
		if t := strings.TrimSpace(os.Getenv("QF_TOKEN")); t != "" {
			return t, nil
		}
		return "", errors.New("no access token: give --token-file FILE or set QF_TOKEN, e.g. eval \"$(qfctl login --server URL --username ADMIN --totp CODE)\"")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" || strings.ContainsAny(t, " \t\r\n") {
		return "", fmt.Errorf("--token-file %s: want a file holding only the access token", file)
	}
	return t, nil
}

// remoteError describes an error answer: the server's message and fields, or the
// status and the start of the body.
func remoteError(status int, body []byte) error {
	var eb struct {
		Error struct {
			Code    string                              `json:"code"`
			Message string                              `json:"message"`
			Fields  map[string]struct{ Message string } `json:"fields"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &eb) != nil || eb.Error.Message == "" {
		s := strings.TrimSpace(string(body))
		if len(s) > 200 {
			s = s[:200] + "..."
		}
		return fmt.Errorf("the server answered HTTP %d: %s", status, s)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s（%s，HTTP %d）", eb.Error.Message, eb.Error.Code, status)
	keys := make([]string, 0, len(eb.Error.Fields))
	for k := range eb.Error.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "\n  %s: %s", k, eb.Error.Fields[k].Message)
	}
	if status == http.StatusUnauthorized {
		b.WriteString("\n  令牌无效或已过期，请重新登录 / the token is invalid or expired: sign in again with qfctl login")
	}
	return errors.New(b.String())
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
