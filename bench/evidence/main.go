// Command evidence measures evidence streaming: a 256 MiB file uploaded through the
// API (POST /v1/reports/{case}/evidence, a streamed multipart body) to a Qingfeng server
// running as its own process with its evidence in a real MinIO, against minio-go's
// PutObject of the same bytes straight to the same MinIO; and how much the server's
// resident memory grows while it streams the file.
//
//	go run ./bench/evidence                  # 256 MiB, 3 rounds
//	go run ./bench/evidence -size 64 -rounds 1
//
// It starts MinIO ($MINIO_BIN, or $(go env GOPATH)/bin/minio as installed by .ci/run)
// and the server (built from ./cmd/qingfeng) on random loopback ports under a temporary
// directory, and removes both on every way out: success, error, interrupt, and the
// overall -timeout (10 minutes). Each round uploads a synthetic PDF (stored as
// received) and a synthetic JPEG (cleaned: its EXIF segment is dropped) once through
// the API and once per PutObject variant, interleaved so that machine noise hits every
// path alike; the table shows medians over the rounds.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func main() { os.Exit(run()) }

type options struct {
	sizeMiB int
	rounds  int
	timeout time.Duration
	verbose bool
}

func run() int {
	var o options
	flag.IntVar(&o.sizeMiB, "size", 256, "size of each uploaded file, MiB")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds (each uploads every file by every path once)")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up (and clean up) after this long")
	flag.BoolVar(&o.verbose, "v", false, "print every measurement")
	flag.Parse()
	if o.sizeMiB < 1 || o.rounds < 1 {
		fmt.Fprintln(os.Stderr, "evidence: -size and -rounds must be positive")
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	e := &env{}
	defer e.cleanup() // also runs when bench panics
	if err := bench(ctx, e, o); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", err, context.Cause(ctx))
		}
		fmt.Fprintln(os.Stderr, "evidence:", err)
		e.dumpLogs()
		return 1
	}
	return 0
}

// env is what the benchmark started: a temporary directory and child processes.
type env struct {
	dir   string
	procs []*proc // stopped in reverse order
}

func (e *env) cleanup() {
	for i := len(e.procs) - 1; i >= 0; i-- {
		e.procs[i].stop()
	}
	if e.dir != "" {
		if err := os.RemoveAll(e.dir); err != nil {
			fmt.Fprintln(os.Stderr, "evidence: remove temporary directory:", err)
		}
	}
}

func (e *env) dumpLogs() {
	for _, p := range e.procs {
		b, err := os.ReadFile(p.logPath)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		lines = lines[max(0, len(lines)-30):]
		fmt.Fprintf(os.Stderr, "--- last lines of %s's log:\n", p.name)
		for _, l := range lines {
			if strings.Contains(strings.ToLower(l), "password") {
				l = "(a line mentioning a password, not shown)"
			}
			fmt.Fprintln(os.Stderr, l)
		}
	}
}

// proc is a child process whose output goes to a log file in the temporary directory.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	err     error         // Wait's result, once done
}

func (e *env) start(name string, env []string, path string, args ...string) (*proc, error) {
	logPath := filepath.Join(e.dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = e.dir
	// If this program dies without cleaning up (SIGKILL), the kernel stops the child.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	e.procs = append(e.procs, p)
	return p, nil
}

// stop asks the process to terminate, and kills it if it has not after 15 seconds.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited: %v", p.name, p.err)
	default:
		return nil
	}
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// waitReady polls url until it answers 200, p exits, or ctx ends.
func waitReady(ctx context.Context, p *proc, url string) error {
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if err := p.exited(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w", p.name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func goEnv(ctx context.Context, name string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", name).Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %w", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}

func bench(ctx context.Context, e *env, o options) error {
	var err error
	if e.dir, err = os.MkdirTemp("", "qingfeng-bench-evidence-"); err != nil {
		return err
	}
	size := int64(o.sizeMiB) << 20

	// MinIO.
	minioBin := os.Getenv("MINIO_BIN")
	if minioBin == "" {
		gopath, err := goEnv(ctx, "GOPATH")
		if err != nil {
			return err
		}
		minioBin = filepath.Join(strings.Split(gopath, string(os.PathListSeparator))[0], "bin", "minio")
	}
	if _, err := os.Stat(minioBin); err != nil {
		return fmt.Errorf("no MinIO binary (run .ci/run once, or set MINIO_BIN): %w", err)
	}
	s3Addr, err := freePort()
	if err != nil {
		return err
	}
	s3User, s3Pass := "qf-bench-"+randomHex(4), randomHex(20)
	minioEnv := append(os.Environ(), "MINIO_ROOT_USER="+s3User, "MINIO_ROOT_PASSWORD="+s3Pass,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	mp, err := e.start("minio", minioEnv, minioBin, "server", "--quiet", "--address", s3Addr, filepath.Join(e.dir, "minio"))
	if err != nil {
		return err
	}
	if err := waitReady(ctx, mp, "http://"+s3Addr+"/minio/health/ready"); err != nil {
		return err
	}

	// The server, built from this module and run as its own process.
	gomod, err := goEnv(ctx, "GOMOD")
	if err != nil {
		return err
	}
	if gomod == "" || gomod == os.DevNull {
		return errors.New("run from inside the qingfeng module (go run ./bench/evidence)")
	}
	serverBin := filepath.Join(e.dir, "qingfeng")
	build := exec.CommandContext(ctx, "go", "build", "-o", serverBin, "./cmd/qingfeng")
	build.Dir = filepath.Dir(gomod)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/qingfeng: %w", err)
	}
	apiAddr, err := freePort()
	if err != nil {
		return err
	}
	serverEnv := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + e.dir, "TMPDIR=" + e.dir,
		"QF_ADDR=" + apiAddr, "QF_DATA_DIR=" + filepath.Join(e.dir, "data"),
		"S3_ENDPOINT=" + s3Addr, "S3_ACCESS_KEY=" + s3User, "S3_SECRET_KEY=" + s3Pass,
		"QF_MAX_FILE_BYTES=300MiB", "QF_MAX_CASE_BYTES=300MiB", "QF_MAX_UPLOAD_BYTES=310MiB",
		"QF_LOG_LEVEL=warn", "QF_SHUTDOWN_TIMEOUT=5s",
	}
	if size > 300<<20-64<<10 {
		return fmt.Errorf("-size %d MiB is over the server's 300 MiB file limit set here", o.sizeMiB)
	}
	sp, err := e.start("qingfeng", serverEnv, serverBin)
	if err != nil {
		return err
	}
	api := "http://" + apiAddr
	if err := waitReady(ctx, sp, api+"/readyz"); err != nil {
		return err
	}

	// The raw client, on the same MinIO.
	mc, err := minio.New(s3Addr, &minio.Options{Creds: credentials.NewStaticV4(s3User, s3Pass, ""), Region: "us-east-1"})
	if err != nil {
		return err
	}
	const rawBucket = "qf-bench-raw"
	if err := mc.MakeBucket(ctx, rawBucket, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		return fmt.Errorf("make bucket: %w", err)
	}

	files := []fileKind{
		{name: "pdf", fileName: "evidence.pdf", contentType: "application/pdf", head: []byte("%PDF-1.7\n"), seed: 1},
		{name: "jpeg", fileName: "evidence.jpg", contentType: "image/jpeg", head: jpegHead(), tail: []byte{0xFF, 0xD9}, noFF: true, seed: 2},
	}
	for i := range files {
		f := &files[i]
		f.size = size
		if f.sha256, err = hashSynth(f.reader()); err != nil {
			return err
		}
	}

	paths := []path{
		{name: "API POST /v1/reports/{case}/evidence", api: true},
		{name: "PutObject, size known, defaults", size: true},
		{name: "PutObject, size known, Store.Put's checksums", size: true, opts: storePutOpts(0)},
		{name: "PutObject, size -1, 8 MiB parts, 2 in flight (= Store.Put)", opts: storePutStreamOpts()},
	}
	type key struct{ file, path int }
	results := map[key][]measurement{}
	fmt.Printf("evidence: %d MiB files, %d rounds; MinIO %s, server pid %d on %s; load average %s\n",
		o.sizeMiB, o.rounds, s3Addr, sp.cmd.Process.Pid, apiAddr, loadAvg())
	for round := 1; round <= o.rounds; round++ {
		for fi, f := range files {
			for pi, p := range paths {
				var m measurement
				if p.api {
					m, err = uploadAPI(ctx, api, sp, f)
				} else {
					m, err = putRaw(ctx, mc, rawBucket, f, p)
				}
				if err != nil {
					return fmt.Errorf("round %d, %s, %s: %w", round, f.name, p.name, err)
				}
				results[key{fi, pi}] = append(results[key{fi, pi}], m)
				if o.verbose {
					fmt.Printf("  round %d %-4s %-60s %7.1f MiB/s%s\n", round, f.name, p.name, m.mibps(f.size), m.rssNote())
				}
			}
		}
	}

	fmt.Printf("\nmedians of %d rounds, %s, load average now %s\n", o.rounds, time.Now().UTC().Format("2006-01-02 15:04 MST"), loadAvg())
	fmt.Printf("%-5s %-60s %9s %14s %s\n", "file", "path", "MiB/s", "API/this", "server RSS: baseline → peak (growth)")
	for fi, f := range files {
		api := results[key{fi, 0}]
		for pi, p := range paths {
			ms := results[key{fi, pi}]
			speeds := make([]float64, len(ms))
			ratios := make([]float64, len(ms))
			for i, m := range ms {
				speeds[i] = m.mibps(f.size)
				ratios[i] = api[i].mibps(f.size) / speeds[i] // per round, then the median
			}
			ratio := fmt.Sprintf("%.2f", median(ratios))
			rss := ""
			if p.api {
				ratio = "-"
				var base, peak, growth []float64
				for _, m := range ms {
					base, peak, growth = append(base, mib(m.rssBase)), append(peak, mib(m.rssPeak)), append(growth, mib(m.rssPeak-m.rssBase))
				}
				rss = fmt.Sprintf("%.0f → %.0f MiB (%.1f MiB; max %.1f)", median(base), median(peak), median(growth), slices.Max(growth))
			}
			fmt.Printf("%-5s %-60s %9.1f %14s %s\n", f.name, p.name, median(speeds), ratio, rss)
		}
	}
	fmt.Println("goals: API/PutObject(size known) ≥ 0.8; server RSS growth ≤ 64 MiB")
	return nil
}

type path struct {
	name string
	api  bool
	size bool // tell PutObject the size
	opts minio.PutObjectOptions
}

// storePutOpts are the integrity options storage/blob's Store.Put uses (unsigned payload,
// Content-MD5 per part), with the given part size.
func storePutOpts(partSize uint64) minio.PutObjectOptions {
	return minio.PutObjectOptions{DisableContentSha256: true, SendContentMd5: true, PartSize: partSize}
}

// storePutStreamOpts are Store.Put's options for a stream longer than one part.
func storePutStreamOpts() minio.PutObjectOptions {
	o := storePutOpts(8 << 20)
	o.ConcurrentStreamParts, o.NumThreads = true, 2
	return o
}

type measurement struct {
	elapsed          time.Duration
	rssBase, rssPeak int64 // bytes; API only
}

func (m measurement) mibps(size int64) float64 {
	return float64(size) / (1 << 20) / m.elapsed.Seconds()
}

func (m measurement) rssNote() string {
	if m.rssBase == 0 {
		return ""
	}
	return fmt.Sprintf("   server RSS %.0f → %.0f MiB (+%.1f)", mib(m.rssBase), mib(m.rssPeak), mib(m.rssPeak-m.rssBase))
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// uploadAPI files an anonymous report, then streams the file to its evidence route as
// a multipart body, sampling the server's RSS every 20 ms meanwhile.
func uploadAPI(ctx context.Context, api string, server *proc, f fileKind) (measurement, error) {
	report := `{"category":"arbitrary_fees","subject":{"kind":"organization","organization":{"credit_code":"51330782MJ0000018J","name":"义乌市某行业协会"}},` +
		`"description":"该协会以“会员服务费”名义向会员企业收取费用，没有收费依据，也不开具票据。","location":{"division":"330782"},"anonymous":true}`
	req, _ := http.NewRequestWithContext(ctx, "POST", api+"/v1/reports", strings.NewReader(report))
	req.Header.Set("Content-Type", "application/json")
	var filed struct {
		CaseNumber    string `json:"case_number"`
		FollowUpToken string `json:"followup_token"`
	}
	if err := doJSON(req, http.StatusCreated, &filed); err != nil {
		return measurement{}, fmt.Errorf("file report: %w", err)
	}

	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	overhead, err := multipartOverhead(mw.Boundary(), f.fileName)
	if err != nil {
		return measurement{}, err
	}
	go func() {
		part, err := mw.CreateFormFile("file", f.fileName)
		if err == nil {
			_, err = io.CopyBuffer(part, f.reader(), make([]byte, 256<<10))
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	req, _ = http.NewRequestWithContext(ctx, "POST", api+"/v1/reports/"+filed.CaseNumber+"/evidence", pr)
	req.ContentLength = overhead + f.size // as a phone's uploader sends it
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+filed.FollowUpToken)

	pid := server.cmd.Process.Pid
	base, err := rss(pid)
	if err != nil {
		return measurement{}, err
	}
	s := sampleRSS(pid, 20*time.Millisecond)
	start := time.Now()
	var out struct {
		Evidence []struct {
			Size           int64  `json:"size"`
			SHA256Received string `json:"sha256_received"`
			ContentType    string `json:"content_type"`
		} `json:"evidence"`
	}
	err = doJSON(req, http.StatusCreated, &out)
	elapsed := time.Since(start)
	peak := s.stop()
	pr.CloseWithError(errors.New("request finished"))
	if err != nil {
		return measurement{}, fmt.Errorf("upload evidence: %w", err)
	}
	if len(out.Evidence) != 1 || out.Evidence[0].SHA256Received != f.sha256 || out.Evidence[0].ContentType != f.contentType {
		return measurement{}, fmt.Errorf("upload evidence: unexpected answer %+v (want sha256_received %s)", out.Evidence, f.sha256)
	}
	return measurement{elapsed: elapsed, rssBase: base, rssPeak: max(peak, base)}, nil
}

// multipartOverhead is the length of a multipart body with one file part, without the
// file's bytes.
func multipartOverhead(boundary, fileName string) (int64, error) {
	var c countWriter
	mw := multipart.NewWriter(&c)
	if err := mw.SetBoundary(boundary); err != nil {
		return 0, err
	}
	if _, err := mw.CreateFormFile("file", fileName); err != nil {
		return 0, err
	}
	if err := mw.Close(); err != nil {
		return 0, err
	}
	return c.n, nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func doJSON(req *http.Request, want int, v any) error {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d: %s", req.Method, req.URL.Path, resp.StatusCode, body)
	}
	return json.Unmarshal(body, v)
}

// putRaw uploads the same bytes with minio-go to the same MinIO.
func putRaw(ctx context.Context, mc *minio.Client, bucket string, f fileKind, p path) (measurement, error) {
	opts := p.opts
	opts.ContentType = f.contentType
	size := int64(-1)
	if p.size {
		size = f.size
	}
	key := "raw/" + f.name
	start := time.Now()
	info, err := mc.PutObject(ctx, bucket, key, f.reader(), size, opts)
	elapsed := time.Since(start)
	if err != nil {
		return measurement{}, err
	}
	if info.Size != f.size {
		return measurement{}, fmt.Errorf("stored %d bytes, want %d", info.Size, f.size)
	}
	if err := mc.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return measurement{}, err
	}
	return measurement{elapsed: elapsed}, nil
}

// rss returns a process's resident set size in bytes, from /proc/<pid>/status.
func rss(pid int) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc/" + strconv.Itoa(pid) + "/status")
}

type sampler struct {
	quit chan struct{}
	wg   sync.WaitGroup
	peak int64
}

// sampleRSS records the highest RSS of pid, read every interval until stop.
func sampleRSS(pid int, interval time.Duration) *sampler {
	s := &sampler{quit: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if v, err := rss(pid); err == nil && v > s.peak {
				s.peak = v
			}
			select {
			case <-s.quit:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *sampler) stop() int64 {
	close(s.quit)
	s.wg.Wait()
	return s.peak
}

// fileKind is a synthetic evidence file: head, then size-len(head)-len(tail) pseudo-random
// bytes (below 0x80 when noFF, so that a JPEG scan holds no marker), then tail.
type fileKind struct {
	name, fileName, contentType string
	head, tail                  []byte
	noFF                        bool
	seed                        uint64
	size                        int64
	sha256                      string
}

func (f fileKind) reader() io.Reader {
	return &synth{head: f.head, tail: f.tail, body: f.size - int64(len(f.head)) - int64(len(f.tail)), noFF: f.noFF, state: f.seed}
}

func hashSynth(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.CopyBuffer(h, r, make([]byte, 256<<10)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// synth streams a fileKind without holding it: a fast deterministic generator
// (splitmix64) fills a 64 KiB block at a time, so the bytes do not depend on how the
// reader is read.
type synth struct {
	head, tail []byte
	body       int64
	noFF       bool
	state      uint64
	block      [64 << 10]byte
	avail      []byte
}

func (s *synth) Read(p []byte) (int, error) {
	switch {
	case len(s.head) > 0:
		n := copy(p, s.head)
		s.head = s.head[n:]
		return n, nil
	case s.body > 0:
		if len(s.avail) == 0 {
			s.fill()
		}
		n := copy(p[:min(int64(len(p)), s.body)], s.avail)
		s.avail = s.avail[n:]
		s.body -= int64(n)
		return n, nil
	case len(s.tail) > 0:
		n := copy(p, s.tail)
		s.tail = s.tail[n:]
		return n, nil
	}
	return 0, io.EOF
}

func (s *synth) fill() {
	mask := ^uint64(0)
	if s.noFF {
		mask = 0x7F7F7F7F7F7F7F7F
	}
	for i := 0; i < len(s.block); i += 8 {
		s.state += 0x9E3779B97F4A7C15
		z := s.state
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
		z = (z ^ (z >> 27)) * 0x94D049BB133111EB
		binary.LittleEndian.PutUint64(s.block[i:], (z^(z>>31))&mask)
	}
	s.avail = s.block[:]
}

// jpegHead is a baseline JPEG's header as a phone writes it, up to the start of the
// scan: SOI, APP0 JFIF, APP1 EXIF (with a GPS note and a serial number, which cleaning
// drops), DQT, SOF0 (4000×3000, 3 components), DHT and SOS. The tables are zeros: the
// cleaner copies them without decoding, and nothing here decodes pixels.
func jpegHead() []byte {
	seg := func(marker byte, payload []byte) []byte {
		b := []byte{0xFF, marker, 0, 0}
		binary.BigEndian.PutUint16(b[2:], uint16(len(payload)+2))
		return append(b, payload...)
	}
	exif := append([]byte("Exif\x00\x00MM\x00\x2A\x00\x00\x00\x08"), []byte("GPSLatitude 30.27N 120.15E BodySerialNumber SN-ABC123")...)
	frame := []byte{8, 0x0B, 0xB8, 0x0F, 0xA0, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1}
	return bytes.Join([][]byte{
		{0xFF, 0xD8},
		seg(0xE0, []byte("JFIF\x00\x01\x02\x01\x00\x48\x00\x48\x00\x00")),
		seg(0xE1, exif),
		seg(0xDB, make([]byte, 65)),
		seg(0xC0, frame),
		seg(0xC4, make([]byte, 29)),
		seg(0xDA, []byte{3, 1, 0, 2, 0x11, 3, 0x11, 0, 63, 0}),
	}, nil)
}
