package crypto

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/intake"
)

// FallbackDivision is the key of the recipient map whose custodians are added to every
// seal, whatever the division: the province-wide custodians who can still open an
// identity when a county's custodian has left, lost a key or is the one reported.
const FallbackDivision = "*"

const (
	// MaxSealedBytes bounds a sealed identity accepted by CheckSealed. An identity is a
	// few hundred bytes and a hybrid stanza about 1.6 KiB, so 64 KiB leaves room for
	// MaxRecipientsPerSeal custodians while refusing to store arbitrary blobs.
	MaxSealedBytes = 64 << 10
	// MaxIdentityBytes bounds the plaintext Seal accepts, so that everything Seal
	// produces passes CheckSealed too.
	MaxIdentityBytes = 8 << 10
	// MaxRecipientsPerSeal bounds how many custodians (division plus fallback) one seal
	// goes to; checked at configuration so that it never fails at report time.
	MaxRecipientsPerSeal = 16

	// hybridStanzaType is the stanza written by age.HybridRecipient (ML-KEM-768 + X25519).
	hybridStanzaType = "mlkem768x25519"
	// A payload is a 16-byte nonce then at least one chunk, each ending in a 16-byte
	// Poly1305 tag; an empty plaintext is still one (empty) tagged chunk.
	payloadNonceSize = 16
	payloadTagSize   = 16
	// ageIntro is the first line of every binary age v1 file.
	ageIntro = "age-encryption.org/v1\n"
)

// Sealer seals reporters' identities (实名信息) to the custodians (保密员) of the division
// where the reported matter happened. It holds only public recipients: the server can
// seal but never open. A Sealer is immutable and safe for concurrent use.
type Sealer struct {
	// sets maps a configured division prefix to its recipients merged with the
	// fallback set, deduplicated, in configuration order.
	sets map[string]*recipientSet
	// fallback is the FallbackDivision set alone, used when no prefix matches; nil when
	// not configured.
	fallback *recipientSet
	// demo is the zero-config demo custodian (see WithDemo): used for a division only
	// when nothing above matches and no retired prefix covers it.
	demo    *recipientSet
	retired []string
	now     func() time.Time
}

type recipientSet struct {
	recipients []age.Recipient
	strings    []string // canonical encodings, recorded in SealedIdentity.Recipients
}

var _ intake.Sealer = (*Sealer)(nil)

// NewSealer parses the custodian configuration. Keys are division-code prefixes ("33"
// province, "3307" city, "330782" county, "330782001" township) or FallbackDivision;
// values are age recipients. Only post-quantum hybrid recipients (age1pq1...) are
// accepted: identities must stay sealed for as long as a reporter can be retaliated
// against, which is longer than X25519 can be trusted against a future quantum
// computer. Every error names the division and quotes (a truncated) recipient.
func NewSealer(recipients map[string][]string) (*Sealer, error) {
	s := &Sealer{sets: make(map[string]*recipientSet), now: time.Now}
	parsed := make(map[string]*recipientSet, len(recipients))
	// Sorted so that the first error reported is the same on every start.
	for _, key := range slices.Sorted(maps.Keys(recipients)) {
		if key != FallbackDivision && !isDivisionPrefix(key) {
			return nil, fmt.Errorf("custodian recipients: division key %q is neither a division code prefix (2 to 12 digits) nor %q", truncate(key), FallbackDivision)
		}
		list := recipients[key]
		if len(list) == 0 {
			return nil, fmt.Errorf("custodian recipients for division %s: no recipients listed; remove the entry or add at least one age1pq1... recipient", key)
		}
		set := &recipientSet{}
		for i, raw := range list {
			r, err := parseCustodianRecipient(raw)
			if err != nil {
				return nil, fmt.Errorf("custodian recipients for division %s, #%d: %w", key, i+1, err)
			}
			set.add(r)
		}
		parsed[key] = set
	}
	s.fallback = parsed[FallbackDivision]
	for _, key := range slices.Sorted(maps.Keys(parsed)) {
		set := parsed[key]
		if key == FallbackDivision {
			continue
		}
		merged := &recipientSet{}
		merged.merge(set)
		if s.fallback != nil {
			merged.merge(s.fallback)
		}
		if n := len(merged.recipients); n > MaxRecipientsPerSeal {
			return nil, fmt.Errorf("custodian recipients for division %s: %d recipients including the %q set, more than the %d a sealed identity may carry", key, n, FallbackDivision, MaxRecipientsPerSeal)
		}
		s.sets[key] = merged
	}
	if s.fallback != nil && len(s.fallback.recipients) > MaxRecipientsPerSeal {
		return nil, fmt.Errorf("custodian recipients for division %s: %d recipients, more than the %d a sealed identity may carry", FallbackDivision, len(s.fallback.recipients), MaxRecipientsPerSeal)
	}
	return s, nil
}

// parseCustodianRecipient accepts exactly one post-quantum hybrid recipient and explains
// the common mistakes: a classic X25519 or SSH key, and above all a private key pasted
// where the public one belongs — that one is never quoted, since errors are logged.
func parseCustodianRecipient(raw string) (*age.HybridRecipient, error) {
	s := strings.TrimSpace(raw)
	if s == strings.ToUpper(s) {
		// Bech32 may be written all in upper case (QR codes): the same key.
		s = strings.ToLower(s)
	}
	switch {
	case s == "":
		return nil, errors.New("empty recipient")
	case strings.HasPrefix(strings.ToUpper(s), "AGE-SECRET-KEY-") || strings.HasPrefix(strings.ToUpper(s), "AGE-PLUGIN-"):
		return nil, errors.New("this is a PRIVATE key, not a recipient; it must never be given to the server — treat it as leaked, generate a new custodian key and configure only its age1pq1... recipient")
	case strings.HasPrefix(s, "age1pq1"):
		r, err := age.ParseHybridRecipient(s)
		if err != nil {
			// age's error quotes the whole (about 2,000-character) string; ours is shorter.
			return nil, fmt.Errorf("malformed post-quantum recipient %q", truncate(s))
		}
		return r, nil
	case strings.HasPrefix(s, "age1"):
		return nil, fmt.Errorf("recipient %q is not post-quantum; only hybrid ML-KEM-768+X25519 recipients (age1pq1...) are accepted, generate one with `qfctl keys new`", truncate(s))
	default:
		return nil, fmt.Errorf("recipient %q is not an age post-quantum recipient (age1pq1...)", truncate(s))
	}
}

func (set *recipientSet) add(r *age.HybridRecipient) {
	str := r.String()
	if slices.Contains(set.strings, str) {
		return
	}
	set.recipients = append(set.recipients, r)
	set.strings = append(set.strings, str)
}

func (set *recipientSet) merge(other *recipientSet) {
	for i, str := range other.strings {
		if !slices.Contains(set.strings, str) {
			set.recipients = append(set.recipients, other.recipients[i])
			set.strings = append(set.strings, str)
		}
	}
}

// truncate keeps configuration errors readable: a hybrid recipient is about 2,000
// characters, and the head and tail are enough to find the culprit in a config file.
func truncate(s string) string {
	const head, tail = 16, 6
	if len(s) <= head+tail+3 {
		return s
	}
	return s[:head] + "..." + s[len(s)-tail:]
}

func isDivisionPrefix(s string) bool {
	return len(s) >= 2 && len(s) <= 12 && isDigits(s)
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// errNoCustodians is returned when a division has no custodians: the report cannot be
// accepted under a real name, because storing the identity in plaintext is never an
// option. It is EUNAVAILABLE, not EINVALID: the reporter did nothing wrong.
func errNoCustodians(division string) *qingfeng.Error {
	e := qingfeng.Errorf(qingfeng.EUNAVAILABLE,
		"该地区尚未配置保密员密钥，暂时无法加密实名信息。您可以选择匿名举报，或稍后再试",
		"no custodian keys are configured for this area, so the identity cannot be sealed; report anonymously or try again later")
	e.Err = fmt.Errorf("no custodian recipients for division %q and no %q fallback", division, FallbackDivision)
	return e
}

// set returns the recipients for division: those of the longest configured prefix plus
// the fallback set, or the fallback set alone.
func (s *Sealer) set(division string) (*recipientSet, error) {
	if division != "" && !isDigits(division) {
		e := qingfeng.Errorf(qingfeng.EINVALID, "行政区划代码无效", "invalid division code")
		e.Err = fmt.Errorf("seal: division %q is not a digit string", truncate(division))
		return nil, e
	}
	for n := min(len(division), 12); n >= 2; n-- {
		if set, ok := s.sets[division[:n]]; ok {
			return set, nil
		}
	}
	if s.fallback != nil {
		return s.fallback, nil
	}
	if s.UsesDemo(division) {
		return s.demo, nil
	}
	return nil, errNoCustodians(division)
}

// WithDemo returns a copy of s that seals to the demo custodian recipient (whose
// private key sits on the server, so it protects nothing) for a division that no
// configured prefix and no fallback covers — and that none of the retired prefixes
// covers: once a jurisdiction has had a real custodian, the demo key is never used
// there again, even if that custodian is later revoked.
func (s *Sealer) WithDemo(recipient string, retired []string) (*Sealer, error) {
	r, err := parseCustodianRecipient(recipient)
	if err != nil {
		return nil, fmt.Errorf("demo custodian recipient: %w", err)
	}
	c := *s
	c.demo = &recipientSet{}
	c.demo.add(r)
	c.retired = slices.Clone(retired)
	return &c, nil
}

// UsesDemo reports whether identities reported in division are sealed to the demo
// custodian alone.
func (s *Sealer) UsesDemo(division string) bool {
	if s.demo == nil || s.fallback != nil {
		return false
	}
	for _, p := range s.retired {
		if p == FallbackDivision || strings.HasPrefix(division, p) {
			return false
		}
	}
	for n := min(len(division), 12); n >= 2; n-- {
		if _, ok := s.sets[division[:n]]; ok {
			return false
		}
	}
	return true
}

// Demo returns the demo custodian recipient, or "" when there is none.
func (s *Sealer) Demo() string {
	if s.demo == nil {
		return ""
	}
	return s.demo.strings[0]
}

// RecipientsFor returns the recipients an identity reported in division is sealed to, for
// clients that seal on the device: they must seal to exactly these.
func (s *Sealer) RecipientsFor(division string) ([]string, error) {
	set, err := s.set(division)
	if err != nil {
		return nil, err
	}
	return slices.Clone(set.strings), nil
}

// Seal encrypts plaintext to the custodians of division (longest configured prefix) and
// the fallback custodians. The result is a binary age file only they can open.
func (s *Sealer) Seal(ctx context.Context, division string, plaintext []byte) (*intake.SealedIdentity, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(plaintext) > MaxIdentityBytes {
		e := qingfeng.Errorf(qingfeng.EINVALID, "实名信息过长", "the identity is too long")
		e.Err = fmt.Errorf("seal: identity of %d bytes, limit %d", len(plaintext), MaxIdentityBytes)
		return nil, e
	}
	set, err := s.set(division)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, set.recipients...)
	if err != nil {
		return nil, fmt.Errorf("seal identity: %w", err)
	}
	if _, err := w.Write(plaintext); err != nil {
		return nil, fmt.Errorf("seal identity: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("seal identity: %w", err)
	}
	return &intake.SealedIdentity{
		Ciphertext: buf.Bytes(),
		Recipients: slices.Clone(set.strings),
		SealedAt:   s.now().UTC(),
	}, nil
}

// SealStream returns a writer that encrypts everything written to it to the custodians
// of division, writing a binary age file to dst. The file is complete only after Close;
// a caller that fails midway must discard dst. The size is not bounded: it is used for
// evidence originals, which CheckSealed's limit does not apply to.
func (s *Sealer) SealStream(ctx context.Context, division string, dst io.Writer) (io.WriteCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	set, err := s.set(division)
	if err != nil {
		return nil, err
	}
	w, err := age.Encrypt(dst, set.recipients...)
	if err != nil {
		return nil, fmt.Errorf("seal stream: %w", err)
	}
	return w, nil
}

// SealedInfo describes a well-formed sealed identity without opening it.
type SealedInfo struct {
	// StanzaTypes lists the recipient stanza types in header order, e.g.
	// "mlkem768x25519" (post-quantum hybrid), "X25519", "scrypt", or a plugin's type.
	StanzaTypes []string
	// PostQuantum is true when every stanza is a hybrid ML-KEM-768+X25519 one. Hybrid
	// stanzas do not say whom they are for, so even then the server cannot know that
	// the device sealed to the right custodians — only that it used the right kind of key.
	PostQuantum bool
	HeaderBytes int // length of the header, up to and including the MAC line
}

// CheckSealed is InspectSealed without the description.
func (s *Sealer) CheckSealed(ciphertext []byte) error {
	_, err := InspectSealed(ciphertext)
	return err
}

func errInvalidSealed(zh, en string, cause error) *qingfeng.Error {
	e := qingfeng.Errorf(qingfeng.EINVALID, zh, en)
	e.Err = cause
	return e
}

// InspectSealed checks that ciphertext, sealed on a reporter's device, is a well-formed
// binary age v1 file of at most MaxSealedBytes: the "age-encryption.org/v1" intro, one
// or more recipient stanzas, the MAC line, a 16-byte nonce and at least one tagged
// chunk, with X25519 and hybrid stanzas of the sizes age expects. It cannot check that
// custodians can open it (the server holds no identity), nor find a payload cut short
// after its first 32 bytes (only the tag, checked on opening, shows that); the caller
// may warn when SealedInfo.PostQuantum is false.
//
// ASCII-armored files are refused rather than de-armored: the stored form is binary
// (intake.SealedIdentity.Ciphertext) and this check must not silently accept bytes that
// differ from what is stored. A handler that wants to accept armor calls Dearmor first.
//
// The header is parsed by age's own strict parser (age.ExtractHeader, the code that
// will later decrypt it), and must re-encode to exactly the bytes given, so that no
// lenient or non-canonical encoding slips through.
func InspectSealed(ciphertext []byte) (SealedInfo, error) {
	switch {
	case len(ciphertext) == 0:
		return SealedInfo{}, errInvalidSealed("实名信息密文为空", "the sealed identity is empty", nil)
	case len(ciphertext) > MaxSealedBytes:
		return SealedInfo{}, errInvalidSealed("实名信息密文过大（上限 64 KiB）", "the sealed identity is larger than 64 KiB",
			fmt.Errorf("sealed identity of %d bytes", len(ciphertext)))
	case isArmored(ciphertext):
		return SealedInfo{}, errInvalidSealed("实名信息密文须为二进制 age 格式，不接受 ASCII 文本封装", "the sealed identity must be a binary age file, not ASCII-armored", nil)
	case !bytes.HasPrefix(ciphertext, []byte(ageIntro)):
		return SealedInfo{}, errInvalidSealed("实名信息密文格式无效（不是 age 加密文件）", "the sealed identity is not an age v1 file", nil)
	}
	hdr, err := age.ExtractHeader(bytes.NewReader(ciphertext))
	if err != nil {
		return SealedInfo{}, errInvalidSealed("实名信息密文格式无效（文件头损坏或不完整）", "the sealed identity has a malformed or truncated header", err)
	}
	if !bytes.HasPrefix(ciphertext, hdr) {
		return SealedInfo{}, errInvalidSealed("实名信息密文格式无效（文件头编码不规范）", "the sealed identity's header is not canonically encoded", nil)
	}
	info := SealedInfo{HeaderBytes: len(hdr), PostQuantum: true}
	for _, st := range headerStanzas(hdr) {
		info.StanzaTypes = append(info.StanzaTypes, st.typ)
		if st.typ != hybridStanzaType {
			info.PostQuantum = false
		}
		// For the native types, check what the custodian's age would check on opening,
		// so that a device bug is reported to the reporter now rather than found by a
		// custodian years later, when the identity can no longer be recovered.
		if err := st.checkNative(); err != nil {
			return SealedInfo{}, errInvalidSealed("实名信息密文格式无效（接收者数据损坏）", "the sealed identity has a malformed recipient stanza", err)
		}
	}
	if len(info.StanzaTypes) == 0 {
		// age's parser refuses this already; kept so that a change there cannot make an
		// unopenable file pass.
		return SealedInfo{}, errInvalidSealed("实名信息密文格式无效（没有接收者）", "the sealed identity has no recipient stanzas", nil)
	}
	// At MaxSealedBytes the payload is always a single (final) chunk, of any length from
	// a bare tag (empty plaintext) up; nothing more can be checked without the key.
	if payload := len(ciphertext) - len(hdr); payload < payloadNonceSize+payloadTagSize {
		return SealedInfo{}, errInvalidSealed("实名信息密文不完整（数据被截断）", "the sealed identity is truncated",
			fmt.Errorf("payload of %d bytes, need at least %d", payload, payloadNonceSize+payloadTagSize))
	}
	return info, nil
}

// stanza is what InspectSealed needs of a recipient stanza.
type stanza struct {
	typ     string
	args    []string
	bodyLen int
}

// headerStanzas lists the stanzas of a header that age.ExtractHeader has already
// accepted and re-encoded, so only the layout, not the validity, is interpreted here:
// "-> type args...\n", then base64 body lines; the last line of a body is shorter than
// 64 columns. Base64 has no '-', so a line starting "-" is a stanza or the MAC line.
func headerStanzas(hdr []byte) []stanza {
	var out []stanza
	for line := range bytes.Lines(hdr) {
		line = bytes.TrimSuffix(line, []byte("\n"))
		if rest, ok := bytes.CutPrefix(line, []byte("-> ")); ok {
			f := strings.Split(string(rest), " ")
			out = append(out, stanza{typ: f[0], args: f[1:]})
			continue
		}
		if len(out) == 0 || bytes.HasPrefix(line, []byte("-")) { // intro or MAC line
			continue
		}
		out[len(out)-1].bodyLen += len(line) * 3 / 4 // unpadded base64: floor(chars·3/4) bytes
	}
	return out
}

// Sizes of the native stanzas: an X25519 share or an ML-KEM-768 ciphertext plus an
// X25519 share as the argument, and a ChaCha20-Poly1305-wrapped 16-byte file key.
const (
	x25519ShareSize   = 32
	hybridEncSize     = 1088 + 32
	wrappedFileKeyLen = 16 + 16
)

func (st stanza) checkNative() error {
	var argLen int
	switch st.typ {
	case hybridStanzaType:
		argLen = hybridEncSize
	case "X25519":
		argLen = x25519ShareSize
	default:
		return nil
	}
	if len(st.args) != 1 {
		return fmt.Errorf("%s stanza with %d arguments, want 1", st.typ, len(st.args))
	}
	// age's header parser checks only that arguments are printable; the recipient
	// decodes them, strictly, when opening.
	arg, err := base64.RawStdEncoding.Strict().DecodeString(st.args[0])
	if err != nil {
		return fmt.Errorf("%s stanza argument is not base64: %v", st.typ, err)
	}
	if len(arg) != argLen {
		return fmt.Errorf("%s stanza argument of %d bytes, want %d", st.typ, len(arg), argLen)
	}
	if st.bodyLen != wrappedFileKeyLen {
		return fmt.Errorf("%s stanza body of %d bytes, want %d", st.typ, st.bodyLen, wrappedFileKeyLen)
	}
	return nil
}

const armorHeader = "-----BEGIN AGE ENCRYPTED FILE-----"

func isArmored(b []byte) bool {
	return bytes.HasPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte(armorHeader))
}

// Dearmor converts an ASCII-armored age file ("-----BEGIN AGE ENCRYPTED FILE-----") to
// the binary form, for clients that can only send text. Input that is not armored is
// returned unchanged. The output is bounded by MaxSealedBytes+1, so InspectSealed still
// sees (and refuses) an oversized file.
func Dearmor(b []byte) ([]byte, error) {
	if !isArmored(b) {
		return b, nil
	}
	out, err := io.ReadAll(io.LimitReader(armor.NewReader(bytes.NewReader(b)), MaxSealedBytes+1))
	if err != nil {
		return nil, errInvalidSealed("实名信息密文的文本封装格式无效", "the sealed identity's ASCII armor is malformed", err)
	}
	return out, nil
}

// Open decrypts a sealed identity (binary or armored) with a custodian's identity
// (one or more AGE-SECRET-KEY-PQ-1... or AGE-SECRET-KEY-1... lines, as in an age
// identity file). It is for tests and for the operator CLI on a custodian's machine;
// the server never holds an identity to call it with. Errors never include the key.
func Open(identity string, ciphertext []byte) ([]byte, error) {
	ids, err := age.ParseIdentities(strings.NewReader(identity))
	if err != nil {
		return nil, fmt.Errorf("open sealed identity: parse custodian key: %w", err)
	}
	src := io.Reader(bytes.NewReader(ciphertext))
	if isArmored(ciphertext) {
		src = armor.NewReader(src)
	}
	r, err := age.Decrypt(src, ids...)
	if err != nil {
		return nil, fmt.Errorf("open sealed identity: %w", err)
	}
	// Bounded like the input: an identity is small, and a forged file must not make the
	// CLI allocate without limit.
	out, err := io.ReadAll(io.LimitReader(r, MaxSealedBytes+1))
	if err != nil {
		return nil, fmt.Errorf("open sealed identity: %w", err)
	}
	if len(out) > MaxSealedBytes {
		return nil, fmt.Errorf("open sealed identity: plaintext larger than %d bytes; use age to decrypt large files", MaxSealedBytes)
	}
	return out, nil
}

// CheckRecipient validates one custodian or staff recipient as NewSealer would: a
// post-quantum hybrid age recipient (age1pq1...), never a private key.
func CheckRecipient(raw string) error {
	_, err := CanonicalRecipient(raw)
	return err
}

// CanonicalRecipient validates raw as CheckRecipient does and returns its canonical
// (lower-case bech32) encoding, so that one key has one spelling when compared.
func CanonicalRecipient(raw string) (string, error) {
	r, err := parseCustodianRecipient(raw)
	if err != nil {
		return "", err
	}
	return r.String(), nil
}
