package templates

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tpl, err := Parse()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	err = tpl.ExecuteTemplate(&b, "error.html", struct{ Title, Message string }{"Oops", `<script>alert(1)</script>`})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "<script>") {
		t.Fatal("page content is not escaped")
	}
}
