package web

import (
	"os"
	"strings"
	"testing"
)

const (
	readme      = "../README.md"
	routesBegin = "<!-- routes:begin -->\n"
	routesEnd   = "<!-- routes:end -->"
)

// TestRouteTable keeps README.md's table of routes what the route table
// says.
func TestRouteTable(t *testing.T) {
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	begin := strings.Index(text, routesBegin)
	end := strings.Index(text, routesEnd)
	if begin < 0 || end < begin {
		t.Fatalf("README.md has no %q … %q around the table of routes", strings.TrimSpace(routesBegin), routesEnd)
	}
	begin += len(routesBegin)
	want := RouteTable(Routes())
	if *update {
		text = text[:begin] + want + text[end:]
		if err := os.WriteFile(readme, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got := text[begin:end]; got != want {
		t.Errorf("README.md's table of routes is not the route table's (%s); "+
			"run go test ./web -run TestRouteTable -update and commit it", firstDifference([]byte(got), []byte(want)))
	}
}

func TestRouteTableFormat(t *testing.T) {
	want := "| method | path | roles | what |\n" +
		"|---|---|---|---|\n" +
		"| GET | `/api/v1/things?limit=&all=&day=&from=&state=` | supervisor, ops | things \\| more |\n" +
		"| GET | `/api/v1/things/{id}` | supervisor, agent (own), visitor (own) | one thing |\n" +
		"| POST | `/api/v1/things` | admin | make a thing |\n" +
		"| DELETE | `/api/v1/things/{id}` | admin | delete a thing |\n" +
		"| GET | `/api/v1/files/{path...}` | anyone, no token | a file |\n"
	if got := RouteTable(testRoutes); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
