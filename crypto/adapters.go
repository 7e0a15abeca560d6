package crypto

// The services declare the small interfaces they need (accounts.Passwords,
// intake.Receipts, in progress as this is written); these adapters let cmd/qingfeng
// wire this package in without glue code. They add no behaviour of their own.

// Passwords offers HashPassword, CheckPassword and DummyCheck as methods, the shape of
// accounts.Passwords.
type Passwords struct{}

// Hash is HashPassword.
func (Passwords) Hash(pw string) (string, error) { return HashPassword(pw) }

// Check is CheckPassword.
func (Passwords) Check(hash, pw string) (bool, error) { return CheckPassword(hash, pw) }

// Dummy is DummyCheck; argon2's cost does not depend on the password.
func (Passwords) Dummy() { DummyCheck("") }

// Receipts offers the receipt functions and a Pepper's receipt methods together, the
// shape of intake.Receipts. Pepper must be set.
type Receipts struct {
	Pepper *Pepper
}

// NewCode is NewReceiptCode.
func (Receipts) NewCode() string { return NewReceiptCode() }

// Normalize is NormalizeReceipt.
func (Receipts) Normalize(code string) (string, bool) { return NormalizeReceipt(code) }

// Format is FormatReceipt.
func (Receipts) Format(code string) string { return FormatReceipt(code) }

// Hash is Pepper.HashReceipt.
func (r Receipts) Hash(code string) []byte { return r.Pepper.HashReceipt(code) }

// KeyedHash is Pepper.KeyedHash.
func (r Receipts) KeyedHash(s string) string { return r.Pepper.KeyedHash(s) }

// SealCode is Pepper.SealReceipt.
func (r Receipts) SealCode(code string) []byte { return r.Pepper.SealReceipt(code) }

// OpenCode is Pepper.OpenReceipt.
func (r Receipts) OpenCode(sealed []byte) (string, error) { return r.Pepper.OpenReceipt(sealed) }

// TOTPSecrets is a Pepper's TOTP sealing in the shape of accounts.SecretBox.
type TOTPSecrets struct {
	Pepper *Pepper
}

// Seal is Pepper.SealTOTPSecret.
func (t TOTPSecrets) Seal(userID string, secret []byte) []byte {
	return t.Pepper.SealTOTPSecret(userID, secret)
}

// Open is Pepper.OpenTOTPSecret.
func (t TOTPSecrets) Open(userID string, sealed []byte) ([]byte, error) {
	return t.Pepper.OpenTOTPSecret(userID, sealed)
}
