package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"text/tabwriter"
	"time"

	qfcrypto "github.com/qingfeng-zj/qingfeng/crypto"
)

// parseInterspersed parses flags that may come before or after the positional
// arguments (`disclose approve ID --reason R`), which package flag alone does not.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func fail(stderr io.Writer, err error) int {
	fmt.Fprintln(stderr, "qfctl:", err)
	return 1
}

// ---------------------------------------------------------------- login

// login signs in and prints shell exports for the token; it stores nothing. The
// password is read from the first line of stdin (prompted for, without echo, on a
// terminal).
func login(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("login", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "", "server URL (default $QF_SERVER)")
	username := fs.String("username", "", "your account name")
	totp := fs.String("totp", "", "the 6-digit code from your authenticator app, if your account has a second factor")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if *username == "" || len(pos) > 0 {
		fmt.Fprintln(stderr, "usage: qfctl login [--server URL] --username NAME [--totp CODE]   (password on stdin)")
		return 2
	}
	base, err := serverURL(*server, stderr)
	if err != nil {
		return fail(stderr, err)
	}
	pw, err := readPassword(stdin, stderr)
	if err != nil {
		return fail(stderr, err)
	}
	c := &client{base: base, http: &http.Client{Timeout: 60 * time.Second}}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresAt   string `json:"expires_at"`
		Restriction string `json:"restriction"`
		User        struct {
			Username string `json:"username"`
			Role     string `json:"role"`
		} `json:"user"`
	}
	creds := map[string]string{"username": *username, "password": pw}
	if *totp != "" {
		creds["totp"] = *totp
	}
	err = c.do("POST", "/v1/auth/login", creds, &tok)
	if err != nil {
		return fail(stderr, err)
	}
	if tok.AccessToken == "" {
		return fail(stderr, errors.New("the server returned no access token"))
	}
	fmt.Fprintf(stdout, "export QF_SERVER=%s\nexport QF_TOKEN=%s\n", shellQuote(base), shellQuote(tok.AccessToken))
	fmt.Fprintf(stderr, "已登录 / signed in: %s (%s)，令牌有效期至 / token valid until %s\n", tok.User.Username, tok.User.Role, localTime(tok.ExpiresAt))
	// The token of an account that must first change its password or set up its second
	// factor opens nothing else: say so now, not at the first command.
	switch tok.Restriction {
	case "":
	case "password_change_required":
		fmt.Fprintln(stderr, "注意 / note: 请先修改初始密码（POST /v1/auth/password），再重新登录；在此之前其他操作都会被拒绝 / change the one-time password first (POST /v1/auth/password), then sign in again; nothing else works until then")
	case "totp_enrollment_required":
		fmt.Fprintln(stderr, "注意 / note: 请先设置两步验证（POST /v1/auth/totp/enroll 与 /v1/auth/totp/confirm），再用 --totp 重新登录；在此之前其他操作都会被拒绝 / set up the second factor first (POST /v1/auth/totp/enroll, then /confirm), then sign in again with --totp; nothing else works until then")
	default:
		fmt.Fprintf(stderr, "注意 / note: 账号受限（%s），其他操作会被拒绝 / the account is restricted (%s)\n", tok.Restriction, tok.Restriction)
	}
	return 0
}

func readPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprint(stderr, "密码 / password: ")
			if echoOff(f) {
				defer func() { echoOn(f); fmt.Fprintln(stderr) }()
			}
		}
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("no password on stdin")
	}
	return pw, nil
}

// echoOff turns off terminal echo with stty, where there is one; best effort.
func echoOff(tty *os.File) bool {
	cmd := exec.Command("stty", "-echo")
	cmd.Stdin = tty
	return cmd.Run() == nil
}

func echoOn(tty *os.File) {
	cmd := exec.Command("stty", "echo")
	cmd.Stdin = tty
	_ = cmd.Run()
}

func shellQuote(s string) string {
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:/=+@%", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func localTime(wire string) string {
	t, err := time.Parse(time.RFC3339, wire)
	if err != nil {
		return wire
	}
	return t.Local().Format("2006-01-02 15:04 MST")
}

// ---------------------------------------------------------------- disclose

type disclosure struct {
	ID             string `json:"id"`
	Case           string `json:"case"`
	Division       string `json:"division"`
	Requester      string `json:"requester"`
	Reason         string `json:"reason"`
	Status         string `json:"status"`
	RequestedAt    string `json:"requested_at"`
	ExpiresAt      string `json:"expires_at"`
	DecidedBy      string `json:"decided_by"`
	DecisionReason string `json:"decision_reason"`
}

var statusLabel = map[string]string{
	"pending":   "待审批",
	"approved":  "已批准",
	"denied":    "已拒绝",
	"completed": "已完成",
	"expired":   "已过期",
}

func (d disclosure) status() string {
	if l, ok := statusLabel[d.Status]; ok {
		return d.Status + "(" + l + ")"
	}
	return d.Status
}

const discloseUsage = `usage:
  qfctl disclose list                            custodian: open requests in your jurisdiction
  qfctl disclose approve ID --reason R           custodian: approve a request
  qfctl disclose deny ID --reason R              custodian: deny a request
  qfctl disclose reseal ID --key FILE            custodian: open the identity with your key, re-seal it
                                                 to the requester only, upload; nothing is shown
  qfctl disclose request CASE --reason R         staff: ask for a case's reporter identity
  qfctl disclose fetch ID --key FILE [--save-sealed FILE]
                                                 staff: open the identity re-sealed to you
every command takes --server URL (default $QF_SERVER) and uses $QF_TOKEN (see qfctl login)`

func disclose(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, discloseUsage)
		return 2
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("disclose "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, discloseUsage) }
	server := fs.String("server", "", "server URL (default $QF_SERVER)")
	var reason, keyFile, saveSealed *string
	wantArgs := 1
	switch sub {
	case "list":
		wantArgs = 0
	case "approve", "deny", "request":
		reason = fs.String("reason", "", "the reason, recorded with the decision or request (required)")
	case "reseal", "fetch":
		keyFile = fs.String("key", "", "your private key file (from qfctl keys new)")
		if sub == "fetch" {
			saveSealed = fs.String("save-sealed", "", "also write the sealed file (ciphertext, as received) to this file")
		}
	default:
		fmt.Fprintln(stderr, discloseUsage)
		return 2
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != wantArgs {
		fmt.Fprintln(stderr, discloseUsage)
		return 2
	}
	if reason != nil && strings.TrimSpace(*reason) == "" {
		fmt.Fprintf(stderr, "qfctl disclose %s: --reason is required (请填写理由)\n", sub)
		return 2
	}
	// The key is read before anything is asked of the server, so that a missing or
	// unreadable key costs no audit entry and no download.
	var identity string
	if keyFile != nil {
		if identity, err = loadKey(*keyFile, stderr); err != nil {
			return fail(stderr, err)
		}
	}
	c, err := newClient(*server, stderr)
	if err != nil {
		return fail(stderr, err)
	}
	id := ""
	if len(pos) > 0 {
		id = pos[0]
	}
	switch sub {
	case "list":
		err = discloseList(c, stdout)
	case "approve", "deny":
		err = discloseDecide(c, sub, id, *reason, stdout)
	case "request":
		err = discloseRequest(c, id, *reason, stdout, stderr)
	case "reseal":
		err = discloseReseal(c, id, identity, stdout)
	case "fetch":
		err = discloseFetch(c, id, identity, *saveSealed, stdout, stderr)
	}
	if err != nil {
		return fail(stderr, err)
	}
	return 0
}

func discloseList(c *client, stdout io.Writer) error {
	var resp struct {
		Disclosures []disclosure `json:"disclosures"`
	}
	if err := c.do("GET", "/v1/disclosures", nil, &resp); err != nil {
		return err
	}
	if len(resp.Disclosures) == 0 {
		fmt.Fprintln(stdout, "没有待处理的申请 / no open requests")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCASE\tREQUESTER\tSTATUS\tEXPIRES\tREASON")
	for _, d := range resp.Disclosures {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Case, d.Requester, d.status(), localTime(d.ExpiresAt), oneLine(d.Reason))
	}
	return tw.Flush()
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func discloseDecide(c *client, action, id, reason string, stdout io.Writer) error {
	var d disclosure
	if err := c.do("POST", "/v1/disclosures/"+url.PathEscape(id)+"/"+action, map[string]string{"reason": reason}, &d); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %s（案件 case %s）\n", d.ID, d.status(), d.Case)
	return nil
}

func discloseRequest(c *client, caseNumber, reason string, stdout, stderr io.Writer) error {
	var d disclosure
	if err := c.do("POST", "/v1/cases/"+url.PathEscape(caseNumber)+"/disclosures", map[string]string{"reason": reason}, &d); err != nil {
		return err
	}
	fmt.Fprintln(stdout, d.ID)
	fmt.Fprintf(stderr, "已提交身份披露申请 / request filed: %s %s，等待保密员审批，%s 前有效 / valid until then\n", d.ID, d.status(), localTime(d.ExpiresAt))
	return nil
}

// discloseReseal is the custodian's side: download the identity sealed to the
// custodians, open it with the custodian's key in memory, seal it again to the
// requester's post-quantum recipient alone, clear the plaintext and upload. The
// plaintext is never printed or written.
func discloseReseal(c *client, id, identity string, stdout io.Writer) error {
	var resp struct {
		Disclosure string `json:"disclosure"`
		Ciphertext string `json:"ciphertext"`
		ResealTo   string `json:"reseal_to"`
	}
	path := "/v1/disclosures/" + url.PathEscape(id)
	if err := c.do("GET", path+"/sealed-identity", nil, &resp); err != nil {
		return err
	}
	if err := qfcrypto.CheckRecipient(resp.ResealTo); err != nil {
		return fmt.Errorf("the server gave a recipient to re-seal to that is not a post-quantum public key; nothing was uploaded: %w", err)
	}
	sealed, err := base64.StdEncoding.DecodeString(resp.Ciphertext)
	if err != nil {
		return fmt.Errorf("the server sent a sealed identity that is not base64: %w", err)
	}
	resealed, err := reseal(identity, sealed, resp.ResealTo)
	if err != nil {
		return fmt.Errorf("%w；未上传任何内容 / nothing was uploaded", err)
	}
	var d disclosure
	if err := c.do("PUT", path+"/resealed", map[string]string{"ciphertext": base64.StdEncoding.EncodeToString(resealed)}, &d); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %s：已转加密给申请人并上传 / re-sealed to the requester and uploaded（案件 case %s）\n", d.ID, d.status(), d.Case)
	return nil
}

// reseal opens sealed with identity and seals the plaintext to recipient only. The
// plaintext lives in one buffer, cleared before returning.
func reseal(identity string, sealed []byte, recipient string) ([]byte, error) {
	plain, err := openSealed(identity, sealed)
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	s, err := qfcrypto.NewSealer(map[string][]string{qfcrypto.FallbackDivision: {recipient}})
	if err != nil {
		return nil, err
	}
	out, err := s.Seal(context.Background(), "", plain)
	if err != nil {
		return nil, fmt.Errorf("re-seal: %w", err)
	}
	// What the server will check, checked here first: one post-quantum stanza.
	info, err := qfcrypto.InspectSealed(out.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("re-seal: %w", err)
	}
	if !info.PostQuantum || len(info.StanzaTypes) != 1 {
		return nil, fmt.Errorf("re-seal: produced %v stanzas, want exactly one post-quantum one", info.StanzaTypes)
	}
	return out.Ciphertext, nil
}

// sealedIdentity is the plaintext the server seals (intake's sealedIdentityV1).
type sealedIdentity struct {
	V                int    `json:"v"`
	Name             string `json:"name"`
	Mobile           string `json:"mobile"`
	ResidentID       string `json:"resident_id"`
	PreferredContact string `json:"preferred_contact"`
}

var contactLabel = map[string]string{
	"phone":     "电话 phone",
	"sms":       "短信 sms",
	"in_person": "当面 in person",
	"mail":      "邮寄 mail",
}

// discloseFetch is the requester's side: download the identity re-sealed to them and
// open it with their own key.
func discloseFetch(c *client, id, identity, saveSealed string, stdout, stderr io.Writer) error {
	var resp struct {
		Ciphertext string `json:"ciphertext"`
	}
	if err := c.do("GET", "/v1/disclosures/"+url.PathEscape(id)+"/identity", nil, &resp); err != nil {
		return err
	}
	sealed, err := base64.StdEncoding.DecodeString(resp.Ciphertext)
	if err != nil {
		return fmt.Errorf("the server sent a sealed identity that is not base64: %w", err)
	}
	if saveSealed != "" {
		if err := os.WriteFile(saveSealed, sealed, 0o600); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "密文已保存 / sealed file saved to %s\n", saveSealed)
	}
	plain, err := openSealed(identity, sealed)
	if err != nil {
		return err
	}
	defer clear(plain)
	printIdentity(stdout, plain)
	return nil
}

func printIdentity(w io.Writer, plain []byte) {
	var id sealedIdentity
	if err := json.Unmarshal(plain, &id); err != nil || id.Name == "" {
		// Sealed on a device in another layout: show it as it is.
		w.Write(plain)
		fmt.Fprintln(w)
		return
	}
	orNone := func(s string) string {
		if s == "" {
			return "（未填写 / not given）"
		}
		return s
	}
	contact := id.PreferredContact
	if l, ok := contactLabel[contact]; ok {
		contact = l
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "姓名 name:\t%s\n", id.Name)
	fmt.Fprintf(tw, "手机 mobile:\t%s\n", orNone(id.Mobile))
	fmt.Fprintf(tw, "身份证号 resident ID:\t%s\n", orNone(id.ResidentID))
	fmt.Fprintf(tw, "联系方式 preferred contact:\t%s\n", orNone(contact))
	tw.Flush()
	id = sealedIdentity{}
}
