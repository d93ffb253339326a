package provider

import "github.com/tonearm-idp/tonearm/provider/fositestore"

// SubjectFor is the sub the client sees for the user: every comparison
// with a sub a client sends back (the claims parameter's sub value) goes
// through it. Public subjects for now: the user's ID (pairwise subjects,
// OpenID Connect Core §8, derive it per sector here).
func SubjectFor(client *fositestore.Client, userID string) string {
	return userID
}
