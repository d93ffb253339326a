package storage

// SealedColumn names a stored value sealed under TONEARM_SECRET (each
// with its owner's ID as context), for re-sealing after the secret is
// rotated. Every column that holds sealed values is listed here, so a new
// one is re-sealed too.
type SealedColumn string

// The sealed columns; the ID passed with each value is the owning row's ID
// (for interactions, the unpadded base64url of IDHash).
const (
	SealedSigningKeys        SealedColumn = "signing keys"
	SealedConnectorSecrets   SealedColumn = "connector client secrets"
	SealedTOTPSecrets        SealedColumn = "TOTP secrets"
	SealedListenBrainzTokens SealedColumn = "ListenBrainz tokens"
	SealedInteractions       SealedColumn = "sign-ins in progress"
	// SealedInstanceSecrets are random values made once per installation
	// (the key of pairwise subjects), by name.
	SealedInstanceSecrets SealedColumn = "instance secrets"
)

// SealedColumns lists every SealedColumn.
var SealedColumns = []SealedColumn{
	SealedSigningKeys, SealedConnectorSecrets, SealedTOTPSecrets, SealedListenBrainzTokens, SealedInteractions, SealedInstanceSecrets,
}

// Reseal returns a sealed value as it should be stored: changed is false
// when it already is.
type Reseal func(id string, sealed []byte) (out []byte, changed bool, err error)
