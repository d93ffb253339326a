package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/tonearm-idp/tonearm/config"
)

// docker-compose.yml (issue 31, item 18). Behind the published port every
// request reaches tonearm from the compose network's gateway, so the
// gateway must be a trusted proxy (else one attacker's failures throttle
// everyone), and it is safe to trust only while the port is published on
// loopback. No ${VAR:?} interpolation: compose interpolates the whole file
// for every command, so "docker compose logs" in a new shell would fail;
// the secret comes from an env_file kept out of the image and of git.
func TestComposeFile(t *testing.T) {
	root := filepath.Join("..", "..")
	raw, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`\$\{[A-Z_]+:?\?[^}]*\}`).Find(raw); m != nil {
		t.Errorf("docker-compose.yml requires %s from the shell: docker compose logs fails in a new shell", m)
	}
	var file struct {
		Services map[string]struct {
			EnvFile     any               `yaml:"env_file"`
			Environment map[string]string `yaml:"environment"`
			Ports       []string          `yaml:"ports"`
		} `yaml:"services"`
		Networks map[string]struct {
			IPAM struct {
				Config []struct {
					Subnet  string `yaml:"subnet"`
					Gateway string `yaml:"gateway"`
				} `yaml:"config"`
			} `yaml:"ipam"`
		} `yaml:"networks"`
	}
	if err := yaml.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	tonearm := file.Services["tonearm"]
	envFile, _ := tonearm.EnvFile.(string)
	if envFile == "" {
		t.Fatalf("the tonearm service reads TONEARM_SECRET from no env_file: %v", tonearm.EnvFile)
	}
	if _, set := tonearm.Environment["TONEARM_SECRET"]; set {
		t.Error("TONEARM_SECRET is set in the compose file itself")
	}
	for _, ignore := range []string{".dockerignore", ".gitignore"} {
		b, _ := os.ReadFile(filepath.Join(root, ignore))
		if !slices.Contains(strings.Fields(string(b)), envFile) {
			t.Errorf("%s does not keep out %s (it holds the secret)", ignore, envFile)
		}
	}
	ipam := file.Networks["default"].IPAM.Config
	if len(ipam) != 1 {
		t.Fatalf("the default network's subnet is not pinned: %+v", file.Networks)
	}
	subnet, err := netip.ParsePrefix(ipam[0].Subnet)
	if err != nil {
		t.Fatal(err)
	}
	gateway, err := netip.ParseAddr(ipam[0].Gateway)
	if err != nil || !subnet.Contains(gateway) {
		t.Fatalf("gateway %q is not in %s", ipam[0].Gateway, subnet)
	}
	proxies, err := config.ParseTrustedProxies(tonearm.Environment["TONEARM_TRUSTED_PROXIES"])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(proxies, func(p netip.Prefix) bool { return p.Contains(gateway) }) {
		t.Errorf("TONEARM_TRUSTED_PROXIES %v does not name the network's gateway %s", proxies, gateway)
	}
	for _, p := range tonearm.Ports {
		if !strings.HasPrefix(p, "127.0.0.1:") {
			t.Errorf("port %q is published beyond loopback, where the trusted gateway would take forged X-Forwarded-For", p)
		}
	}
}
