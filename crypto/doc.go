// Package crypto holds every secret-handling primitive of Qingfeng, so that the rules
// for them live in one place and are reviewed together:
//
//   - sealing a real-name reporter's identity to the custodians (保密员) of a division
//     with age post-quantum hybrid recipients, and checking identities sealed on the
//     reporter's device (seal.go);
//   - custodian key generation for the operator CLI (keys.go);
//   - receipt codes (回执码) and the server pepper that turns them, idempotency keys and
//     refresh tokens into keyed hashes (receipt.go);
//   - argon2id password hashing for staff accounts (password.go);
//   - Ed25519 JWT access tokens (token.go).
//
// Import it as qfcrypto: it shares its last path element with the standard library.
//
// What it must not do: hold a custodian's private key anywhere but in the caller's
// hands (the server only ever has recipients), keep a receipt code or a reporter's
// identity in plaintext beyond the call that handles it, or put secret material into
// an error message — errors here end up in logs.
package crypto
