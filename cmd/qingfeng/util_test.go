package main

import (
	"encoding/base64"
	"net/http"
	"time"
)

var (
	timeNow    = time.Now
	timeMinute = time.Minute
)

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func httpClient() *http.Client { return http.DefaultClient }
