// Command funclen prints the lines of every Go file and the longest
// functions under the directories given (tests excluded unless -tests), for
// the size figures in closing notes: go run ./scripts/funclen jobs
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

type fn struct {
	name  string
	lines int
}

func main() {
	tests := flag.Bool("tests", false, "include _test.go files")
	top := flag.Int("top", 10, "how many of the longest functions to list")
	flag.Parse()
	fset := token.NewFileSet()
	var fns []fn
	type file struct {
		path  string
		lines int
	}
	var files []file
	for _, root := range flag.Args() {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
				return err
			}
			if !*tests && strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			files = append(files, file{path, fset.File(f.Pos()).LineCount()})
			for _, decl := range f.Decls {
				fd, ok := decl.(*ast.FuncDecl)
				if !ok || fd.Body == nil {
					continue
				}
				name := fd.Name.Name
				if fd.Recv != nil && len(fd.Recv.List) > 0 {
					t := fd.Recv.List[0].Type
					if s, ok := t.(*ast.StarExpr); ok {
						t = s.X
					}
					if id, ok := t.(*ast.Ident); ok {
						name = id.Name + "." + name
					}
				}
				n := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1
				fns = append(fns, fn{path + ":" + name, n})
			}
			return nil
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].lines > files[j].lines })
	total := 0
	fmt.Println("files (lines):")
	for _, f := range files {
		total += f.lines
		fmt.Printf("  %5d %s\n", f.lines, f.path)
	}
	fmt.Printf("  %5d total in %d files\n", total, len(files))
	sort.Slice(fns, func(i, j int) bool { return fns[i].lines > fns[j].lines })
	fmt.Printf("longest functions (lines, of %d):\n", len(fns))
	for i, f := range fns {
		if i == *top {
			break
		}
		fmt.Printf("  %5d %s\n", f.lines, f.name)
	}
}
