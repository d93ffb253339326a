package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// schemaChecker validates JSON values against the subset of JSON Schema the
// document uses: $ref, type (one or a list), properties, required,
// additionalProperties: false, items, enum.
type schemaChecker struct{ doc map[string]any }

func (c schemaChecker) resolve(s map[string]any) map[string]any {
	for {
		ref, ok := s["$ref"].(string)
		if !ok {
			return s
		}
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		s = c.doc["components"].(map[string]any)["schemas"].(map[string]any)[name].(map[string]any)
	}
}

func jsonType(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		if x == float64(int64(x)) {
			return "integer"
		}
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "unknown"
}

func (c schemaChecker) check(path string, schema map[string]any, v any) error {
	s := c.resolve(schema)
	if t, ok := s["type"]; ok {
		got := jsonType(v)
		okType := false
		switch tt := t.(type) {
		case string:
			okType = tt == got || (tt == "number" && got == "integer")
		case []any:
			for _, x := range tt {
				okType = okType || x == got
			}
		}
		if !okType {
			return fmt.Errorf("%s: type %s, want %v", path, got, t)
		}
	}
	if enum, ok := s["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			found = found || e == v
		}
		if !found {
			return fmt.Errorf("%s: %v not in %v", path, v, enum)
		}
	}
	switch x := v.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		for _, r := range asList(s["required"]) {
			if _, ok := x[r]; !ok {
				return fmt.Errorf("%s: required %q missing", path, r)
			}
		}
		for k, val := range x {
			ps, ok := props[k].(map[string]any)
			if !ok {
				if s["additionalProperties"] == false {
					return fmt.Errorf("%s: %q is not documented", path, k)
				}
				continue
			}
			if err := c.check(path+"."+k, ps, val); err != nil {
				return err
			}
		}
	case []any:
		if items, ok := s["items"].(map[string]any); ok {
			for i, it := range x {
				if err := c.check(fmt.Sprintf("%s[%d]", path, i), items, it); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func asList(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		out = append(out, x.(string))
	}
	return out
}

// TestOpenAPIResponses drives real calls and checks every answer against
// the documented schema for its path, method and status.
func TestOpenAPIResponses(t *testing.T) {
	t.Parallel()
	s := startE2E(t, "sqlite://"+t.TempDir()+"/t.db", options{mailer: newCaptureMailer()})
	doc := s.want(s.call(nil, http.MethodGet, "/api/openapi.json", "", nil), http.StatusOK).body
	checker := schemaChecker{doc: doc}
	s.admin("root")
	adminTok := s.userToken("root", "admin")
	u := s.user("member")
	browser := s.loginBrowser("member")
	seen := map[string]bool{}
	check := func(method, docPath, path, bearer string, c *http.Client, body any) apiReply {
		t.Helper()
		r := s.call(c, method, path, bearer, body)
		op, ok := doc["paths"].(map[string]any)[docPath].(map[string]any)[strings.ToLower(method)].(map[string]any)
		if !ok {
			t.Fatalf("%s %s is not documented", method, docPath)
		}
		resp, ok := op["responses"].(map[string]any)[fmt.Sprint(r.status)].(map[string]any)
		if !ok {
			t.Fatalf("%s %s answered %d, which is not documented: %s", method, docPath, r.status, r.raw)
		}
		schema := resp["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)
		var v any
		if err := json.Unmarshal([]byte(r.raw), &v); err != nil {
			t.Fatalf("%s %s: not JSON: %s", method, docPath, r.raw)
		}
		if err := checker.check(method+" "+docPath, schema, v); err != nil {
			t.Errorf("%v (body %s)", err, r.raw)
		}
		seen[fmt.Sprintf("%s %s %d", method, docPath, r.status)] = true
		return r
	}
	uid := "/api/admin/users/" + u.ID
	check(http.MethodPost, "/api/User/createUser", "/api/User/createUser", "", nil, map[string]string{"username": "newbie", "password": e2ePassword})
	check(http.MethodPost, "/api/User/createUser", "/api/User/createUser", "", nil, map[string]string{"username": "newbie", "password": e2ePassword})
	check(http.MethodPost, "/api/User/createUser", "/api/User/createUser", "", nil, map[string]string{"username": "x"})
	check(http.MethodPost, "/api/User/startSession", "/api/User/startSession", "", nil, map[string]string{"username": "member", "password": e2ePassword})
	check(http.MethodPost, "/api/User/startSession", "/api/User/startSession", "", nil, map[string]string{"username": "member", "password": "wrong-password"})
	check(http.MethodPost, "/api/User/associateToken", "/api/User/associateToken", "", browser, map[string]string{"user": u.ID, "scrobbleToken": lbToken})
	check(http.MethodPost, "/api/User/associateToken", "/api/User/associateToken", "", nil, map[string]string{"user": u.ID, "scrobbleToken": lbToken})
	check(http.MethodGet, "/api/me", "/api/me", "", browser, nil)
	check(http.MethodPatch, "/api/me", "/api/me", "", browser, map[string]any{"name": "Member Name", "email": "member@example.org"})
	check(http.MethodPatch, "/api/me", "/api/me", "", browser, map[string]any{"name": "x"})
	check(http.MethodGet, "/api/users/{username}", "/api/users/member", "", nil, nil)
	check(http.MethodGet, "/api/users/{username}", "/api/users/ghost", "", nil, nil)
	check(http.MethodGet, "/api/admin/users", "/api/admin/users?limit=1", adminTok, nil, nil)
	check(http.MethodGet, "/api/admin/users", "/api/admin/users", "", nil, nil)
	check(http.MethodGet, "/api/admin/users/{id}", uid, adminTok, nil, nil)
	check(http.MethodPatch, "/api/admin/users/{id}", uid, adminTok, nil, map[string]any{"bio": "edited"})
	check(http.MethodPost, "/api/admin/users/{id}/password", uid+"/password", adminTok, nil, map[string]any{"password": "admin-set-pass-1"})
	check(http.MethodPost, "/api/admin/clients", "/api/admin/clients", adminTok, nil, map[string]any{"clientId": "c1", "redirectUris": []string{"https://c1.example/cb"}})
	check(http.MethodGet, "/api/admin/clients", "/api/admin/clients", adminTok, nil, nil)
	check(http.MethodGet, "/api/admin/clients/{id}", "/api/admin/clients/c1", adminTok, nil, nil)
	check(http.MethodDelete, "/api/admin/clients/{id}", "/api/admin/clients/c1", adminTok, nil, nil)
	check(http.MethodPost, "/api/password-reset/request", "/api/password-reset/request", "", nil, map[string]string{"email": "member@example.org"})
	check(http.MethodPost, "/api/password-reset/confirm", "/api/password-reset/confirm", "", nil, map[string]string{"token": "nope", "newPassword": "whatever-1234"})
	check(http.MethodPost, "/api/User/endSession", "/api/User/endSession", adminTok, nil, map[string]string{"user": u.ID})
	check(http.MethodDelete, "/api/admin/users/{id}", uid, adminTok, nil, nil)
	if len(seen) < 20 {
		t.Fatalf("only %d answers checked", len(seen))
	}
}
