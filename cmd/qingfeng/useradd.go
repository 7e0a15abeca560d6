package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/routing"
)

func fiberListenConfig() fiber.ListenConfig {
	return fiber.ListenConfig{DisableStartupMessage: true}
}

// userAdd creates an account directly in the configured database: the way to make the
// first admin of a real deployment. With the embedded default, stop the server first
// (or use POST /v1/admin/users). The password is read from stdin, or generated and
// printed when stdin is empty.
func userAdd(cfg Config, log *slog.Logger, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("useradd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	username := fs.String("username", "", "login name (3–64 lowercase letters, digits, . _ -)")
	role := fs.String("role", "admin", "admin, staff, liaison or custodian")
	unit := fs.String("unit", "", "unit id for staff, e.g. 330782-mz")
	division := fs.String("division", "", "division code for liaisons and custodians, e.g. 330782")
	display := fs.String("name", "", "display name")
	mustChange := fs.Bool("must-change", true, "the password must be changed at first login (it is one-time: the operator saw it)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	pw, _ := bufio.NewReader(stdin).ReadString('\n')
	pw = strings.TrimRight(pw, "\r\n")
	generated := pw == ""
	if generated {
		pw = randomPassword()
	}
	ctx := context.Background()
	m := &Main{Config: cfg, Log: log}
	defer m.Close()
	if err := m.Open(ctx); err != nil {
		fmt.Fprintln(stderr, "qingfeng useradd:", err)
		return 1
	}
	u, err := m.Accounts.CreateUser(ctx, accounts.NewUser{Username: *username, DisplayName: *display, Password: pw,
		Role: accounts.Role(*role), UnitID: *unit, Division: *division, MustChangePassword: *mustChange},
		func(id string) bool { _, ok := m.engine.Units.Get(id); return ok },
		func(code string) bool { _, ok := routing.LookupDivision(code); return ok })
	if err != nil {
		fmt.Fprintln(stderr, "qingfeng useradd:", err)
		return 1
	}
	fmt.Fprintf(stdout, "created %s %s (%s)\n", u.Role, u.Username, u.ID)
	if generated {
		fmt.Fprintf(stdout, "password: %s\n", pw)
	}
	return 0
}

// randomPassword is 26 base32 characters (128 bits) from crypto/rand.
func randomPassword() string { return rand.Text() }
