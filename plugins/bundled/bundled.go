// Package bundled embeds the plugins that ship inside the crosscast binary (`source = "builtin:NAME"`). Their
// sources are in plugins/builtin, written with the public SDK; `make plugins` (a dependency of build, run, test and
// lint) compiles them into wasm/ before Go embeds them here. The wasm files are build outputs, not committed.
package bundled

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed wasm/*.wasm
var files embed.FS

// Names lists the bundled plugins, sorted.
func Names() []string {
	entries, _ := fs.ReadDir(files, "wasm")
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".wasm"))
	}
	sort.Strings(names)
	return names
}

// Wasm returns the module of the bundled plugin name.
func Wasm(name string) ([]byte, error) {
	b, err := files.ReadFile("wasm/" + name + ".wasm")
	if err != nil {
		return nil, fmt.Errorf("no bundled plugin %q (bundled: %s)", name, strings.Join(Names(), ", "))
	}
	return b, nil
}
