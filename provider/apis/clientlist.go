package apis

import "context"

// clientList checks a list of client IDs an API names (its introspectors,
// the clients that may exchange tokens for it): at most MaxIntrospectors,
// each a registered client, duplicates dropped. what names the list in the
// error, hint says how to fix an unknown one.
func (r *Registry) clientList(ctx context.Context, ids []string, what, hint string) ([]string, error) {
	out := []string{}
	if len(ids) > MaxIntrospectors {
		return nil, invalid("at most %d %ss", MaxIntrospectors, what)
	}
	if len(ids) == 0 {
		return out, nil
	}
	clients, err := r.store.ListClients(ctx)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		known := false
		for _, c := range clients {
			known = known || c.ID == id
		}
		if !known {
			return nil, invalid("%s %q is not a registered client (%s)", what, id, hint)
		}
		if !contains(out, id) {
			out = append(out, id)
		}
	}
	return out, nil
}
