package main

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"

	qfcrypto "github.com/qingfeng-zj/qingfeng/crypto"
)

const resealUsage = `usage: qfctl reseal list
       qfctl reseal do TASK --key FILE   (custodian: open with your key, re-seal to every listed recipient, upload)`

type resealTask struct {
	ID       string   `json:"id"`
	Case     string   `json:"case"`
	Reason   string   `json:"reason"`
	Target   string   `json:"target"`
	ResealTo []string `json:"reseal_to"`
	Status   string   `json:"status"`
}

// resealTasks is `qfctl reseal list|do`: the custodian's side of re-seal tasks (after a
// transfer to another jurisdiction, or when custodians change).
func resealTasks(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, resealUsage)
		return 2
	}
	sub := args[0]
	fs := flag.NewFlagSet("reseal "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "", "server URL (default $QF_SERVER)")
	keyFile := fs.String("key", "", "your private key file (from qfctl keys new)")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return 2
	}
	switch {
	case sub == "list" && len(pos) == 0:
	case sub == "do" && len(pos) == 1 && *keyFile != "":
	default:
		fmt.Fprintln(stderr, resealUsage)
		return 2
	}
	var identity string
	if sub == "do" {
		if identity, err = loadKey(*keyFile, stderr); err != nil {
			return fail(stderr, err)
		}
	}
	c, err := newClient(*server, stderr)
	if err != nil {
		return fail(stderr, err)
	}
	if sub == "list" {
		err = resealList(c, stdout)
	} else {
		err = resealDo(c, pos[0], identity, stdout)
	}
	if err != nil {
		return fail(stderr, err)
	}
	return 0
}

func resealList(c *client, stdout io.Writer) error {
	var resp struct {
		Tasks []resealTask `json:"tasks"`
	}
	if err := c.do("GET", "/v1/reseal-tasks", nil, &resp); err != nil {
		return err
	}
	if len(resp.Tasks) == 0 {
		fmt.Fprintln(stdout, "没有待转加密的任务 / no re-seal tasks")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCASE\tREASON\tTARGET\tRECIPIENTS")
	for _, t := range resp.Tasks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", t.ID, t.Case, t.Reason, t.Target, len(t.ResealTo))
	}
	return tw.Flush()
}

// resealDo downloads the identity, opens it with the custodian's key in memory, seals
// it to every listed recipient, clears the plaintext and uploads. Nothing is printed
// or written but the outcome.
func resealDo(c *client, id, identity string, stdout io.Writer) error {
	var resp struct {
		Task       string   `json:"task"`
		Ciphertext string   `json:"ciphertext"`
		ResealTo   []string `json:"reseal_to"`
	}
	path := "/v1/reseal-tasks/" + url.PathEscape(id)
	if err := c.do("GET", path+"/sealed-identity", nil, &resp); err != nil {
		return err
	}
	for _, r := range resp.ResealTo {
		if err := qfcrypto.CheckRecipient(r); err != nil {
			return fmt.Errorf("the server listed a recipient that is not a post-quantum public key; nothing was uploaded: %w", err)
		}
	}
	sealed, err := base64.StdEncoding.DecodeString(resp.Ciphertext)
	if err != nil {
		return fmt.Errorf("the server sent a sealed identity that is not base64: %w", err)
	}
	plain, err := openSealed(identity, sealed)
	if err != nil {
		return fmt.Errorf("%w；未上传任何内容 / nothing was uploaded", err)
	}
	s, err := qfcrypto.NewSealer(map[string][]string{qfcrypto.FallbackDivision: resp.ResealTo})
	if err != nil {
		clear(plain)
		return err
	}
	out, err := s.Seal(context.Background(), "", plain)
	clear(plain)
	if err != nil {
		return fmt.Errorf("re-seal: %w", err)
	}
	var t resealTask
	if err := c.do("PUT", path+"/resealed", map[string]string{"ciphertext": base64.StdEncoding.EncodeToString(out.Ciphertext)}, &t); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %s：已转加密给 %d 个公钥并上传 / re-sealed to %d recipients and uploaded（案件 case %s）\n",
		t.ID, t.Status, len(t.ResealTo), len(t.ResealTo), t.Case)
	return nil
}
