package crypto

import (
	"fmt"

	"filippo.io/age"
)

// GenerateCustodianKey creates a custodian's (保密员) key pair for `qfctl keys new`: a
// post-quantum hybrid (ML-KEM-768 + X25519) age identity, "AGE-SECRET-KEY-PQ-1...",
// which stays with the custodian and never reaches the server, and its recipient,
// "age1pq1...", which the administrator configures for the custodian's division.
func GenerateCustodianKey() (identity, recipient string, err error) {
	id, err := age.GenerateHybridIdentity()
	if err != nil {
		return "", "", fmt.Errorf("generate custodian key: %w", err)
	}
	return id.String(), id.Recipient().String(), nil
}
