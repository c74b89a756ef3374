package query

import (
	_ "embed"
	"fmt"
	"strings"
)

// functionsText is the reviewed list of the functions a query may call;
// its header says how to read and extend it.
//
//go:embed functions.txt
var functionsText string

// functionKind is where a function is called: in an expression (scalar,
// aggregate, window functions and macros) or in FROM (table functions).
type functionKind int

const (
	kindExpr functionKind = iota
	kindTable
)

func (k functionKind) String() string {
	if k == kindTable {
		return "table function"
	}
	return "function"
}

// functionList is the parsed functions.txt: the names allowed and the names
// denied, each with its reason, by kind.
type functionList struct {
	allow [2]map[string]bool
	deny  [2]map[string]string
}

// builtinFunctions is functions.txt, parsed once.
var builtinFunctions = mustParseFunctions(functionsText)

func mustParseFunctions(text string) *functionList {
	l, err := parseFunctions(text)
	if err != nil {
		panic(err)
	}
	return l
}

// parseFunctions reads a functions.txt. Returns an error naming the line of
// a name outside any section, a denial without a reason, an unknown section,
// or a name both allowed and denied.
func parseFunctions(text string) (*functionList, error) {
	l := &functionList{}
	for k := range 2 {
		l.allow[k] = map[string]bool{}
		l.deny[k] = map[string]string{}
	}
	section := ""
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "[") {
			section = line
			switch section {
			case "[expr]", "[table]", "[deny expr]", "[deny table]":
			default:
				return nil, fmt.Errorf("functions.txt:%d: unknown section %s", n+1, section)
			}
			continue
		}
		name, reason, _ := strings.Cut(line, "\t")
		name, reason = strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(reason)
		switch section {
		case "[expr]":
			l.allow[kindExpr][name] = true
		case "[table]":
			l.allow[kindTable][name] = true
		case "[deny expr]", "[deny table]":
			if reason == "" {
				return nil, fmt.Errorf("functions.txt:%d: %s is denied without a reason", n+1, name)
			}
			k := kindExpr
			if section == "[deny table]" {
				k = kindTable
			}
			l.deny[k][name] = reason
		default:
			return nil, fmt.Errorf("functions.txt:%d: %s is outside a section", n+1, name)
		}
	}
	for k := range 2 {
		for name := range l.deny[k] {
			if l.allow[k][name] {
				return nil, fmt.Errorf("functions.txt: %s is both allowed and denied", name)
			}
		}
	}
	return l, nil
}

// check returns nil when a query may call the function name as kind, and
// otherwise the EFORBIDDEN error that names it, says why and how to extend
// the list.
func (l *functionList) check(name string, kind functionKind) error {
	name = strings.ToLower(name)
	if l.allow[kind][name] {
		return nil
	}
	why, ok := l.deny[kind][name]
	if !ok {
		why = "it is not on pinpipe's list of functions a query may call"
	}
	return refusedCall(kind, name, why)
}
