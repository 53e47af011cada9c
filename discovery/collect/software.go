package collect

import (
	"bufio"
	"os"
	"sort"
	"strings"

	"github.com/ferry-migrate/ferry/discovery"
)

// product is how one database or middleware gives itself away: a process
// name, a fragment of a Java command line, a package name, or an install
// path.
type product struct {
	name     string
	comms    []string // exact /proc/<pid>/comm, or a prefix ending in '*'
	cmdlines []string // substrings of the command line
	packages []string // package names, or prefixes ending in '*'
	paths    []string // install directories relative to Root
}

var products = []product{
	{name: "DB2", comms: []string{"db2sysc", "db2acd"}, paths: []string{"opt/ibm/db2"}},
	{name: "Oracle Database", comms: []string{"ora_pmon_*", "tnslsnr"}, paths: []string{"u01/app/oracle", "opt/oracle"}},
	{name: "MySQL", comms: []string{"mysqld"}, packages: []string{"mysql-server*", "mysql-community-server*", "percona-server-server*"}},
	{name: "MariaDB", comms: []string{"mariadbd"}, packages: []string{"mariadb-server*"}},
	{name: "PostgreSQL", comms: []string{"postgres", "postmaster"}, packages: []string{"postgresql-1*", "postgresql-server*", "postgresql"}},
	{name: "SQL Server", comms: []string{"sqlservr"}, packages: []string{"mssql-server"}, paths: []string{"opt/mssql"}},
	{name: "MongoDB", comms: []string{"mongod"}, packages: []string{"mongodb-org-server", "mongodb-server"}},
	{name: "Redis", comms: []string{"redis-server"}, packages: []string{"redis-server", "redis"}},
	{name: "WebLogic", cmdlines: []string{"weblogic.Server", "weblogic.NodeManager"}},
	{name: "WebSphere", cmdlines: []string{"com.ibm.ws.runtime.WsServer"}, paths: []string{"opt/IBM/WebSphere"}},
	{name: "JBoss/WildFly", cmdlines: []string{"jboss-modules.jar"}},
	{name: "Tomcat", cmdlines: []string{"org.apache.catalina.startup.Bootstrap"}, packages: []string{"tomcat*"}},
	{name: "nginx", comms: []string{"nginx"}, packages: []string{"nginx", "nginx-core", "nginx-full"}},
	{name: "Apache httpd", comms: []string{"httpd", "apache2"}, packages: []string{"apache2", "httpd"}},
	{name: "Elasticsearch", cmdlines: []string{"org.elasticsearch.bootstrap"}, packages: []string{"elasticsearch"}},
	{name: "Kafka", cmdlines: []string{"kafka.Kafka"}},
	{name: "RabbitMQ", cmdlines: []string{"-s rabbit"}, packages: []string{"rabbitmq-server"}},
	{name: "Docker", comms: []string{"dockerd"}, packages: []string{"docker-ce", "docker.io"}},
}

func matchName(pattern, s string) bool {
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(s, p)
	}
	return pattern == s
}

// software recognises products from running processes, the dpkg and apk
// package databases, and install paths. The rpm database is a Berkeley DB
// or SQLite file that cannot be read without a library or the rpm binary,
// so on RPM distributions packages are seen only through processes and
// paths.
func (c *Collector) software(procs []procInfo) []discovery.Software {
	var out []discovery.Software
	seen := map[string]bool{}
	add := func(s discovery.Software) {
		if !seen[s.Name+"/"+s.Source] {
			seen[s.Name+"/"+s.Source] = true
			out = append(out, s)
		}
	}
	sorted := append([]procInfo(nil), procs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].pid < sorted[j].pid })
	for _, p := range sorted {
		for _, pr := range products {
			for _, cm := range pr.comms {
				if matchName(cm, p.comm) {
					add(discovery.Software{Name: pr.name, Source: "process", Evidence: p.comm, PID: p.pid})
				}
			}
			for _, cl := range pr.cmdlines {
				if strings.Contains(p.cmdline, cl) {
					add(discovery.Software{Name: pr.name, Source: "process", Evidence: cl, PID: p.pid})
				}
			}
		}
	}
	for _, pkg := range c.packages() {
		for _, pr := range products {
			for _, pat := range pr.packages {
				if matchName(pat, pkg.name) {
					add(discovery.Software{Name: pr.name, Version: pkg.version, Source: "package", Evidence: pkg.name})
				}
			}
		}
	}
	for _, pr := range products {
		for _, p := range pr.paths {
			if exists(c.path(p)) {
				add(discovery.Software{Name: pr.name, Source: "path", Evidence: "/" + p})
			}
		}
	}
	return out
}

type pkg struct{ name, version string }

// packages reads installed packages from dpkg's status file and apk's
// installed database.
func (c *Collector) packages() []pkg {
	var out []pkg
	if f, err := os.Open(c.path("var", "lib", "dpkg", "status")); err == nil {
		var cur pkg
		installed := false
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		flush := func() {
			if cur.name != "" && installed {
				out = append(out, cur)
			}
			cur, installed = pkg{}, false
		}
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				flush()
			case strings.HasPrefix(line, "Package: "):
				cur.name = strings.TrimPrefix(line, "Package: ")
			case strings.HasPrefix(line, "Version: "):
				cur.version = strings.TrimPrefix(line, "Version: ")
			case strings.HasPrefix(line, "Status: "):
				installed = strings.HasSuffix(line, " installed")
			}
		}
		flush()
		f.Close()
	}
	if f, err := os.Open(c.path("lib", "apk", "db", "installed")); err == nil {
		var cur pkg
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if cur.name != "" {
					out = append(out, cur)
				}
				cur = pkg{}
			case strings.HasPrefix(line, "P:"):
				cur.name = line[2:]
			case strings.HasPrefix(line, "V:"):
				cur.version = line[2:]
			}
		}
		if cur.name != "" {
			out = append(out, cur)
		}
		f.Close()
	}
	return out
}
