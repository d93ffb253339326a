package sqlstore

import (
	"context"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/tonearm-idp/tonearm/storage"
)

type clientModel struct {
	ID                      string `gorm:"primaryKey"`
	SecretHash              []byte
	OldSecretHash           []byte
	OldSecretExpiresAt      *time.Time
	IDTokenAlg              string `gorm:"column:id_token_alg"`
	RedirectURIs            string `gorm:"column:redirect_uris"`
	PostLogoutRedirectURIs  string `gorm:"column:post_logout_redirect_uris"`
	GrantTypes              string
	ResponseTypes           string
	Scopes                  string
	Audience                string
	Public                  bool
	FirstParty              bool
	AllowNoPKCE             bool   `gorm:"column:allow_no_pkce"`
	RequirePAR              bool   `gorm:"column:require_par"`
	RequireDPoP             bool   `gorm:"column:require_dpop"`
	BackchannelLogoutURI    string `gorm:"column:backchannel_logout_uri"`
	Name                    string
	LogoURI                 string `gorm:"column:logo_uri"`
	ClientURI               string `gorm:"column:client_uri"`
	PolicyURI               string `gorm:"column:policy_uri"`
	TosURI                  string `gorm:"column:tos_uri"`
	Owner                   string
	Registration            string
	RegistrationTokenHash   []byte
	Disabled                bool
	TokenEndpointAuthMethod string    `gorm:"column:token_endpoint_auth_method"`
	JWKS                    string    `gorm:"column:jwks"`
	JWKSURI                 string    `gorm:"column:jwks_uri"`
	RequestURIs             string    `gorm:"column:request_uris"`
	RequestObjectSigningAlg string    `gorm:"column:request_object_signing_alg"`
	SubjectType             string    `gorm:"column:subject_type"`
	SectorIdentifierURI     string    `gorm:"column:sector_identifier_uri"`
	CreatedAt               time.Time `gorm:"autoCreateTime:false"`
}

func (clientModel) TableName() string { return "clients" }

// encodeList stores a string list as a JSON array ("[]" for none).
func encodeList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(l)
	return string(b)
}

// decodeList reads what encodeList wrote. Lists of plain strings (scopes,
// audiences, grant types: no escapes) are split by hand, since every token
// lookup decodes four of them; anything else goes through encoding/json.
func decodeList(s string) []string {
	if s == "[]" {
		return []string{}
	}
	if len(s) >= 4 && s[0] == '[' && s[1] == '"' && s[len(s)-2] == '"' && s[len(s)-1] == ']' && !strings.ContainsRune(s, '\\') {
		parts := strings.Split(s[2:len(s)-2], `","`)
		plain := true
		for _, p := range parts {
			if strings.ContainsRune(p, '"') || !utf8.ValidString(p) {
				plain = false
				break
			}
		}
		if plain {
			return parts
		}
	}
	var l []string
	if err := json.Unmarshal([]byte(s), &l); err != nil || len(l) == 0 {
		return []string{}
	}
	return l
}

func (m clientModel) record() storage.Client {
	c := storage.Client{
		ID:                      m.ID,
		SecretHash:              m.SecretHash,
		OldSecretHash:           m.OldSecretHash,
		IDTokenAlg:              m.IDTokenAlg,
		RedirectURIs:            decodeList(m.RedirectURIs),
		PostLogoutRedirectURIs:  decodeList(m.PostLogoutRedirectURIs),
		GrantTypes:              decodeList(m.GrantTypes),
		ResponseTypes:           decodeList(m.ResponseTypes),
		Scopes:                  decodeList(m.Scopes),
		Audience:                decodeList(m.Audience),
		Public:                  m.Public,
		FirstParty:              m.FirstParty,
		AllowNoPKCE:             m.AllowNoPKCE,
		RequirePAR:              m.RequirePAR,
		RequireDPoP:             m.RequireDPoP,
		BackchannelLogoutURI:    m.BackchannelLogoutURI,
		Name:                    m.Name,
		LogoURI:                 m.LogoURI,
		ClientURI:               m.ClientURI,
		PolicyURI:               m.PolicyURI,
		TosURI:                  m.TosURI,
		Owner:                   m.Owner,
		Registration:            m.Registration,
		RegistrationTokenHash:   m.RegistrationTokenHash,
		Disabled:                m.Disabled,
		TokenEndpointAuthMethod: m.TokenEndpointAuthMethod,
		JWKS:                    m.JWKS,
		JWKSURI:                 m.JWKSURI,
		RequestURIs:             decodeList(m.RequestURIs),
		RequestObjectSigningAlg: m.RequestObjectSigningAlg,
		SubjectType:             m.SubjectType,
		SectorIdentifierURI:     m.SectorIdentifierURI,
		CreatedAt:               utc(m.CreatedAt),
	}
	if m.OldSecretExpiresAt != nil && len(m.OldSecretHash) > 0 {
		c.OldSecretExpiresAt = utc(*m.OldSecretExpiresAt)
	} else {
		c.OldSecretHash = nil
	}
	return c
}

// CreateClient implements storage.Storage.
func (s *Store) CreateClient(ctx context.Context, c storage.Client) error {
	m := clientModelOf(c)
	return translate(s.conn(ctx).Create(&m).Error)
}

// UpdateClient implements storage.Storage: read, change and write back in
// one transaction (modify).
func (s *Store) UpdateClient(ctx context.Context, id string, update func(storage.Client) (storage.Client, error)) (storage.Client, error) {
	nm, err := modify(ctx, s, row{key: "id", value: id}, func(_ *gorm.DB, m clientModel) (clientModel, error) {
		next, err := update(m.record())
		if err != nil {
			return m, err
		}
		next.ID, next.CreatedAt = m.ID, utc(m.CreatedAt)
		return clientModelOf(next), nil
	})
	if err != nil {
		return storage.Client{}, err
	}
	return nm.record(), nil
}

func clientModelOf(c storage.Client) clientModel {
	alg := c.IDTokenAlg
	if alg == "" {
		alg = "RS256"
	}
	m := clientModel{
		ID:                      c.ID,
		IDTokenAlg:              alg,
		SecretHash:              c.SecretHash,
		RedirectURIs:            encodeList(c.RedirectURIs),
		PostLogoutRedirectURIs:  encodeList(c.PostLogoutRedirectURIs),
		GrantTypes:              encodeList(c.GrantTypes),
		ResponseTypes:           encodeList(c.ResponseTypes),
		Scopes:                  encodeList(c.Scopes),
		Audience:                encodeList(c.Audience),
		Public:                  c.Public,
		FirstParty:              c.FirstParty,
		AllowNoPKCE:             c.AllowNoPKCE,
		RequirePAR:              c.RequirePAR,
		RequireDPoP:             c.RequireDPoP,
		BackchannelLogoutURI:    c.BackchannelLogoutURI,
		Name:                    c.Name,
		LogoURI:                 c.LogoURI,
		ClientURI:               c.ClientURI,
		PolicyURI:               c.PolicyURI,
		TosURI:                  c.TosURI,
		Owner:                   c.Owner,
		Registration:            c.Registration,
		RegistrationTokenHash:   c.RegistrationTokenHash,
		Disabled:                c.Disabled,
		TokenEndpointAuthMethod: c.TokenEndpointAuthMethod,
		JWKS:                    c.JWKS,
		JWKSURI:                 c.JWKSURI,
		RequestURIs:             encodeList(c.RequestURIs),
		RequestObjectSigningAlg: c.RequestObjectSigningAlg,
		SubjectType:             subjectType(c.SubjectType),
		SectorIdentifierURI:     c.SectorIdentifierURI,
		CreatedAt:               utc(c.CreatedAt),
	}
	if len(c.OldSecretHash) > 0 && !c.OldSecretExpiresAt.IsZero() {
		at := utc(c.OldSecretExpiresAt)
		m.OldSecretHash, m.OldSecretExpiresAt = c.OldSecretHash, &at
	}
	return m
}

// GetClient implements storage.Storage.
func (s *Store) GetClient(ctx context.Context, id string) (storage.Client, error) {
	var m clientModel
	if err := s.conn(ctx).Where("id = ?", id).Take(&m).Error; err != nil {
		return storage.Client{}, translate(err)
	}
	return m.record(), nil
}

// ListClients implements storage.Storage.
func (s *Store) ListClients(ctx context.Context) ([]storage.Client, error) {
	var ms []clientModel
	if err := s.conn(ctx).Order("id").Find(&ms).Error; err != nil {
		return nil, translate(err)
	}
	out := make([]storage.Client, len(ms))
	for i, m := range ms {
		out[i] = m.record()
	}
	return out, nil
}

// DeleteClient implements storage.Storage. Consents go by cascade; tokens,
// codes and sessions issued to the client are deleted in the same
// transaction.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	return s.transaction(ctx, func(tx *gorm.DB) error {
		if err := tx.Where("client_id = ?", id).Delete(&consentModel{}).Error; err != nil {
			return translate(err)
		}
		if err := tx.Where("client_id = ?", id).Delete(&oauthRequestModel{}).Error; err != nil {
			return translate(err)
		}
		if err := tx.Where("client_id = ?", id).Delete(&accessTokenModel{}).Error; err != nil {
			return translate(err)
		}
		res := tx.Where("id = ?", id).Delete(&clientModel{})
		if res.Error != nil {
			return translate(res.Error)
		}
		if res.RowsAffected == 0 {
			return storage.ErrNotFound
		}
		return nil
	})
}

// subjectType stores "" as public, so a row always names its type.
func subjectType(t string) string {
	if t == "" {
		return storage.SubjectPublic
	}
	return t
}
