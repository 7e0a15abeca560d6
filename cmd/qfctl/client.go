package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"
)

// maxResponseBytes bounds a response body: the largest is a sealed identity (at most
// 64 KiB, base64) or a page of requests.
const maxResponseBytes = 4 << 20

// client talks to the Qingfeng API with a staff access token.
type client struct {
	base  string // http(s)://host[:port], no trailing slash
	token string
	http  *http.Client
}

// apiError is the server's {"error":{...}} body, or a description of a response that
// was not one.
type apiError struct {
	Status  int
	Code    string                              `json:"code"`
	Message string                              `json:"message"`
	Fields  map[string]struct{ Message string } `json:"fields"`
	Allowed []string                            `json:"allowed"`
	hint    string                              // what to do about it, if qfctl knows
}

func (e *apiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s（%s，HTTP %d）", e.Message, e.Code, e.Status)
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "\n  %s: %s", k, e.Fields[k].Message)
	}
	if e.hint != "" {
		b.WriteString("\n  " + e.hint)
	}
	return b.String()
}

// serverURL is --server, else $QF_SERVER, checked to be an http(s) URL. A plain-http
// server other than this machine gets a warning: the token and ciphertexts would
// cross the network unprotected.
func serverURL(flagValue string, stderr io.Writer) (string, error) {
	raw := flagValue
	if raw == "" {
		raw = os.Getenv("QF_SERVER")
	}
	if raw == "" {
		return "", errors.New("no server: give --server URL or set QF_SERVER (e.g. https://qingfeng.example.gov.cn)")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("server %q is not an http(s) URL", raw)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		fmt.Fprintf(stderr, "qfctl: 警告：%s 未加密（http），令牌和密文将明文传输 / warning: %s is plain http; use https\n", raw, raw)
	}
	return strings.TrimRight(u.Scheme+"://"+u.Host+u.Path, "/"), nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// newClient builds a client for the commands that need a signed-in user: the token
// comes from $QF_TOKEN, set by `eval "$(qfctl login ...)"`.
func newClient(server string, stderr io.Writer) (*client, error) {
	base, err := serverURL(server, stderr)
	if err != nil {
		return nil, err
	}
	tok := strings.TrimSpace(os.Getenv("QF_TOKEN"))
	if tok == "" {
		return nil, errors.New("未登录 / not signed in: set QF_TOKEN, e.g. eval \"$(qfctl login --server URL --username NAME)\"")
	}
	return &client{base: base, token: tok, http: &http.Client{Timeout: 60 * time.Second}}, nil
}

// do sends method path with body (marshalled as JSON when not nil) and decodes a 2xx
// response into out (when not nil). Any other status becomes an *apiError.
func (c *client) do(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Accept-Language", "zh-CN")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("无法连接服务器 / cannot reach the server: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if len(data) > maxResponseBytes {
		return fmt.Errorf("response larger than %d bytes", maxResponseBytes)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var eb struct {
			Error *apiError `json:"error"`
		}
		if json.Unmarshal(data, &eb) == nil && eb.Error != nil && eb.Error.Message != "" {
			eb.Error.Status = resp.StatusCode
			if resp.StatusCode == http.StatusUnauthorized && c.token != "" {
				eb.Error.hint = "令牌无效或已过期，请重新登录 / the token is invalid or expired; sign in again: eval \"$(qfctl login --username NAME)\""
			}
			return eb.Error
		}
		snippet := strings.TrimSpace(string(data))
		if len(snippet) > 200 {
			snippet = snippet[:200] + "..."
		}
		return &apiError{Status: resp.StatusCode, Code: "http_error", Message: "服务器返回错误 / server error: " + snippet}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("unexpected response from %s %s: %w", method, path, err)
	}
	return nil
}
