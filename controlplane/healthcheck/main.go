// Command csp-healthcheck judges a ClusterSecurityPolicy the way GitOps tools do, for the tests:
//
//	csp-healthcheck lua SCRIPT < object.json   # Argo CD: run a resource health Lua script with gopher-lua
//	csp-healthcheck kstatus < object.json      # Flux: sigs.k8s.io/cli-utils kstatus, as Flux's health checks use
//
// Each prints one JSON object: {"status": ..., "message": ...}. The Lua environment is the one Argo CD gives
// health scripts: the base, package and table libraries only (no string, os or io), the object as the global
// `obj` (JSON maps and arrays as tables), and a one-second time limit.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kjson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: csp-healthcheck lua SCRIPT | kstatus (object as JSON on stdin)")
	}
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("reading stdin: %v", err)
	}
	var obj map[string]any
	// Integers as int64, like the API machinery decodes them (kstatus reads metadata.generation as one).
	if err := kjson.Unmarshal(raw, &obj); err != nil {
		fail("stdin is not a JSON object: %v", err)
	}
	var r result
	switch os.Args[1] {
	case "lua":
		if len(os.Args) != 3 {
			fail("usage: csp-healthcheck lua SCRIPT")
		}
		script, err := os.ReadFile(os.Args[2])
		if err != nil {
			fail("%v", err)
		}
		r, err = runLua(string(script), obj)
		if err != nil {
			fail("lua: %v", err)
		}
	case "kstatus":
		res, err := status.Compute(&unstructured.Unstructured{Object: obj})
		if err != nil {
			fail("kstatus: %v", err)
		}
		r = result{Status: res.Status.String(), Message: res.Message}
	default:
		fail("unknown command %q", os.Args[1])
	}
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
}

func runLua(script string, obj map[string]any) (result, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}} {
		l.Push(l.NewFunction(lib.open))
		l.Push(lua.LString(lib.name))
		l.Call(1, 0)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		return result{}, err
	}
	tbl, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return result{}, fmt.Errorf("the script returned %s, not a table", l.Get(-1).Type())
	}
	r := result{Status: lua.LVAsString(tbl.RawGetString("status")), Message: lua.LVAsString(tbl.RawGetString("message"))}
	return r, nil
}

// toLua converts decoded JSON the way Argo CD hands objects to health scripts.
func toLua(l *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case map[string]any:
		t := l.NewTable()
		for k, e := range x {
			t.RawSetString(k, toLua(l, e))
		}
		return t
	case []any:
		t := l.NewTable()
		for _, e := range x {
			t.Append(toLua(l, e))
		}
		return t
	case string:
		return lua.LString(x)
	case bool:
		return lua.LBool(x)
	case int64:
		return lua.LNumber(x)
	case float64:
		return lua.LNumber(x)
	default:
		return lua.LNil
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "csp-healthcheck: "+format+"\n", args...)
	os.Exit(2)
}
