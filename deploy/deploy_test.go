// Package deploy_test checks the deployment files a user reaches for: the
// Helm chart (rendered with Helm's own engine and every document decoded
// strictly into the Kubernetes API types), the Dockerfile (parsed, and its
// build commands run outside docker, which cannot run here) and the systemd
// units — and that every command and flag they use exists in the binary.
package deploy_test

import (
	"bufio"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// render renders the chart with values the way `helm install` does.
func render(t *testing.T, vals map[string]any) (map[string]string, error) {
	t.Helper()
	ch, err := loader.Load("helm/ferry")
	if err != nil {
		t.Fatal(err)
	}
	if err := chartutil.ValidateAgainstSchema(ch, vals); err != nil {
		t.Fatal(err)
	}
	rv, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: "prod", Namespace: "migrations", IsInstall: true, Revision: 1}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	return engine.Render(ch, rv)
}

// objects are the rendered documents, decoded strictly.
type objects struct {
	deployments  []appsv1.Deployment
	statefulsets []appsv1.StatefulSet
	services     []corev1.Service
	secrets      []corev1.Secret
	jobs         []batchv1.Job
	pdbs         []policyv1.PodDisruptionBudget
	ingresses    []networkingv1.Ingress
}

func decode(t *testing.T, files map[string]string) objects {
	t.Helper()
	var o objects
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		if strings.HasSuffix(name, "NOTES.txt") || strings.HasPrefix(filepath.Base(name), "_") {
			continue
		}
		for i, doc := range strings.Split(files[name], "\n---") {
			if strings.TrimSpace(strings.TrimPrefix(doc, "---")) == "" {
				continue
			}
			var head struct{ APIVersion, Kind string }
			if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
				t.Fatalf("%s document %d is not YAML: %v\n%s", name, i, err, doc)
			}
			var target any
			switch head.APIVersion + " " + head.Kind {
			case "apps/v1 Deployment":
				o.deployments = append(o.deployments, appsv1.Deployment{})
				target = &o.deployments[len(o.deployments)-1]
			case "apps/v1 StatefulSet":
				o.statefulsets = append(o.statefulsets, appsv1.StatefulSet{})
				target = &o.statefulsets[len(o.statefulsets)-1]
			case "v1 Service":
				o.services = append(o.services, corev1.Service{})
				target = &o.services[len(o.services)-1]
			case "v1 Secret":
				o.secrets = append(o.secrets, corev1.Secret{})
				target = &o.secrets[len(o.secrets)-1]
			case "batch/v1 Job":
				o.jobs = append(o.jobs, batchv1.Job{})
				target = &o.jobs[len(o.jobs)-1]
			case "policy/v1 PodDisruptionBudget":
				o.pdbs = append(o.pdbs, policyv1.PodDisruptionBudget{})
				target = &o.pdbs[len(o.pdbs)-1]
			case "networking.k8s.io/v1 Ingress":
				o.ingresses = append(o.ingresses, networkingv1.Ingress{})
				target = &o.ingresses[len(o.ingresses)-1]
			default:
				t.Fatalf("%s: unexpected %s %s", name, head.APIVersion, head.Kind)
			}
			// Strict: a misspelt or misplaced field is an error, as the API
			// server's validation would make it.
			if err := yaml.UnmarshalStrict([]byte(doc), target); err != nil {
				t.Fatalf("%s document %d is not a valid %s: %v\n%s", name, i, head.Kind, err, doc)
			}
		}
	}
	return o
}

func matches(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// checkPod checks one pod template: labels under the selector, images,
// probes on declared ports, secrets and volumes that exist, commands the
// binary has.
func checkPod(t *testing.T, kind, name string, sel *metaSelector, pod corev1.PodTemplateSpec, o objects, existing map[string]bool, bin *binary) {
	t.Helper()
	if sel != nil && !matches(sel.labels, pod.Labels) {
		t.Errorf("%s %s: selector %v does not match its pods' labels %v", kind, name, sel.labels, pod.Labels)
	}
	if pod.Spec.SecurityContext == nil || pod.Spec.SecurityContext.RunAsNonRoot == nil || !*pod.Spec.SecurityContext.RunAsNonRoot {
		t.Errorf("%s %s: pods must run as non-root", kind, name)
	}
	volumes := map[string]bool{}
	for _, v := range pod.Spec.Volumes {
		volumes[v.Name] = true
		if v.Secret != nil && !secretExists(v.Secret.SecretName, o, existing) {
			t.Errorf("%s %s: volume %s names secret %q, which neither the chart renders nor the values declare", kind, name, v.Name, v.Secret.SecretName)
		}
	}
	for _, c := range pod.Spec.Containers {
		if c.Image == "" || strings.HasSuffix(c.Image, ":") {
			t.Errorf("%s %s/%s: no image tag", kind, name, c.Name)
		}
		ports := map[string]bool{}
		for _, p := range c.Ports {
			ports[p.Name] = true
		}
		for _, probe := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
			if probe == nil {
				continue
			}
			if probe.HTTPGet != nil && !ports[probe.HTTPGet.Port.StrVal] {
				t.Errorf("%s %s/%s: probe on undeclared port %q", kind, name, c.Name, probe.HTTPGet.Port.StrVal)
			}
		}
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] && !claimed(o, m.Name) {
				t.Errorf("%s %s/%s: mounts undeclared volume %q", kind, name, c.Name, m.Name)
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				ref := e.ValueFrom.SecretKeyRef
				if !secretExists(ref.Name, o, existing) {
					t.Errorf("%s %s/%s: env %s reads secret %q, which neither the chart renders nor the values declare", kind, name, c.Name, e.Name, ref.Name)
				}
				for _, s := range o.secrets {
					if s.Name == ref.Name && s.StringData[ref.Key] == "" && s.Data[ref.Key] == nil {
						t.Errorf("%s %s/%s: env %s reads key %q that secret %s lacks", kind, name, c.Name, e.Name, ref.Key, ref.Name)
					}
				}
			}
		}
		if bin != nil {
			bin.check(t, kind+" "+name+"/"+c.Name, c.Args, envNames(c.Env))
		}
	}
}

type metaSelector struct{ labels map[string]string }

func claimed(o objects, name string) bool {
	for _, s := range o.statefulsets {
		for _, c := range s.Spec.VolumeClaimTemplates {
			if c.Name == name {
				return true
			}
		}
	}
	return false
}

func secretExists(name string, o objects, existing map[string]bool) bool {
	if existing[name] {
		return true
	}
	for _, s := range o.secrets {
		if s.Name == name {
			return true
		}
	}
	return false
}

func envNames(env []corev1.EnvVar) []string {
	var out []string
	for _, e := range env {
		out = append(out, e.Name)
	}
	return out
}

func TestHelmChart(t *testing.T) {
	bin := ferryBinary(t)
	external := map[string]any{
		"database": map[string]any{"url": "postgres://ferry:pw@db.internal:5432/ferry?sslmode=require"},
		"redis":    map[string]any{"url": "redis://redis.internal:6379/0"},
		"admin":    map[string]any{"existingSecret": "ferry-admin"},
		"license":  map[string]any{"existingSecret": "ferry-license"}, "marketplace": map[string]any{"existingSecret": "ferry-market"},
		"metrics": map[string]any{"existingSecret": "ferry-metrics"}, "ingress": map[string]any{"enabled": true, "tlsSecret": "ferry-tls"},
		"tracing": map[string]any{"otlpEndpoint": "otel-collector:4318"},
	}
	bundled := map[string]any{
		"postgresql": map[string]any{"enabled": true, "auth": map[string]any{"password": "pw"}},
		"redis":      map[string]any{"enabled": true},
		"gateway":    map[string]any{"enabled": false},
	}
	for _, tc := range []struct {
		name     string
		vals     map[string]any
		existing []string
		want     map[string]int // kind → count
	}{
		{name: "external database and redis", vals: external, existing: []string{"ferry-keys", "ferry-admin", "ferry-license", "ferry-market", "ferry-metrics"},
			want: map[string]int{"Deployment": 2, "StatefulSet": 1, "Service": 2, "Secret": 1, "Job": 1, "PodDisruptionBudget": 1, "Ingress": 1}},
		{name: "bundled postgresql and redis", vals: bundled, existing: []string{"ferry-keys"},
			want: map[string]int{"Deployment": 2, "StatefulSet": 0, "Service": 1, "Secret": 1, "Job": 1, "PodDisruptionBudget": 1, "Ingress": 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files, err := render(t, tc.vals)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			o := decode(t, files)
			got := map[string]int{"Deployment": len(o.deployments), "StatefulSet": len(o.statefulsets), "Service": len(o.services),
				"Secret": len(o.secrets), "Job": len(o.jobs), "PodDisruptionBudget": len(o.pdbs), "Ingress": len(o.ingresses)}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("rendered %v, want %v", got, tc.want)
			}
			existing := map[string]bool{}
			for _, e := range tc.existing {
				existing[e] = true
			}
			var pods []map[string]string
			components := map[string]*appsv1.Deployment{}
			for i := range o.deployments {
				d := &o.deployments[i]
				checkPod(t, "Deployment", d.Name, &metaSelector{d.Spec.Selector.MatchLabels}, d.Spec.Template, o, existing, bin)
				pods = append(pods, d.Spec.Template.Labels)
				components[d.Spec.Template.Labels["app.kubernetes.io/component"]] = d
			}
			for _, s := range o.statefulsets {
				checkPod(t, "StatefulSet", s.Name, &metaSelector{s.Spec.Selector.MatchLabels}, s.Spec.Template, o, existing, bin)
				pods = append(pods, s.Spec.Template.Labels)
			}
			for _, j := range o.jobs {
				checkPod(t, "Job", j.Name, nil, j.Spec.Template, o, existing, bin)
				if j.Annotations["helm.sh/hook"] != "pre-install,pre-upgrade" {
					t.Errorf("job %s must run before install and upgrade", j.Name)
				}
			}
			api, worker := components["api"], components["worker"]
			if api == nil || worker == nil || *api.Spec.Replicas < 2 || *worker.Spec.Replicas < 2 {
				t.Fatalf("want at least two API replicas and two workers: %v %v", api, worker)
			}
			if !contains(api.Spec.Template.Spec.Containers[0].Args, "--no-migrate") {
				t.Errorf("the API replicas must leave migrations to the migrate job")
			}
			for _, s := range o.services {
				ok := false
				for _, p := range pods {
					if matches(s.Spec.Selector, p) {
						ok = true
					}
				}
				if !ok {
					t.Errorf("service %s selects no pod: %v", s.Name, s.Spec.Selector)
				}
			}
			for _, s := range o.secrets {
				if !strings.HasPrefix(s.StringData["database"], "postgres://") || !strings.HasPrefix(s.StringData["redis"], "redis://") {
					t.Errorf("secret %s: database %q, redis %q", s.Name, s.StringData["database"], s.StringData["redis"])
				}
			}
			for _, ing := range o.ingresses {
				be := ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service
				if be.Name != api.Name && be.Name != strings.Replace(api.Name, "-api", "-api", 1) {
					t.Errorf("ingress backend %s is not the API service", be.Name)
				}
			}
		})
	}
	// Without a database the chart refuses to render, and says why.
	if _, err := render(t, map[string]any{"redis": map[string]any{"url": "redis://r:6379"}}); err == nil || !strings.Contains(err.Error(), "need PostgreSQL") {
		t.Fatalf("render without a database: %v", err)
	}
	// The dependencies exist as conditional charts.
	ch, _ := loader.Load("helm/ferry")
	var deps []string
	for _, d := range ch.Metadata.Dependencies {
		deps = append(deps, d.Name+"?"+d.Condition)
	}
	if fmt.Sprint(deps) != "[postgresql?postgresql.enabled redis?redis.enabled]" {
		t.Fatalf("chart dependencies %v", deps)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// instruction is one Dockerfile instruction.
type instruction struct {
	cmd, args string
	line      int
}

func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	start := 0
	s := bufio.NewScanner(f)
	for n := 1; s.Scan(); n++ {
		line := s.Text()
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		cont := strings.HasSuffix(trimmed, "\\")
		cur.WriteString(strings.TrimSuffix(trimmed, "\\"))
		cur.WriteByte(' ')
		if cont {
			continue
		}
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start})
		cur.Reset()
	}
	return out
}

var known = map[string]bool{"FROM": true, "WORKDIR": true, "COPY": true, "RUN": true, "ARG": true, "ENV": true, "USER": true,
	"VOLUME": true, "EXPOSE": true, "ENTRYPOINT": true, "CMD": true, "LABEL": true}

// binary is the ferry binary built by the Dockerfile's own commands.
type binary struct{ path, agent string }

var (
	buildOnce sync.Once
	built     *binary
	buildErr  error
)

// ferryBinary parses the Dockerfile and runs its Go build commands outside
// docker, into a temporary /out.
func ferryBinary(t *testing.T) *binary {
	t.Helper()
	buildOnce.Do(func() {
		ins := parseDockerfile(t, "../Dockerfile")
		out, err := os.MkdirTemp("", "ferry-docker-out-")
		if err != nil {
			buildErr = err
			return
		}
		args := map[string]string{}
		for _, in := range ins {
			if in.cmd == "ARG" {
				k, v, _ := strings.Cut(in.args, "=")
				args[k] = v
			}
			if in.cmd != "RUN" || !strings.Contains(in.args, "go build") {
				continue
			}
			cmd := in.args
			for k, v := range args {
				cmd = strings.ReplaceAll(cmd, "${"+k+"}", v)
			}
			cmd = strings.ReplaceAll(cmd, "/out/", out+"/")
			c := exec.Command("sh", "-c", cmd)
			c.Dir = ".."
			if b, err := c.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("Dockerfile line %d: %s: %v\n%s", in.line, cmd, err, b)
				return
			}
		}
		built = &binary{path: filepath.Join(out, "ferry"), agent: filepath.Join(out, "ferry-agent")}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

var flagRE = regexp.MustCompile(`--([a-z][a-z0-9-]*)`)
var envRE = regexp.MustCompile(`\((FERRY_[A-Z_]+)\)`)

// check runs `ferry ARGS[0] --help` and checks that each --flag in args
// and each FERRY_* variable in env is one the command reads.
func (b *binary) check(t *testing.T, where string, args, env []string) {
	t.Helper()
	if len(args) == 0 {
		args = []string{"serve"}
	}
	help, err := exec.Command(b.path, args[0], "--help").CombinedOutput()
	if err != nil {
		t.Errorf("%s: `ferry %s --help`: %v\n%s", where, args[0], err, help)
		return
	}
	flags := map[string]bool{}
	for _, m := range flagRE.FindAllStringSubmatch(string(help), -1) {
		flags[m[1]] = true
	}
	vars := map[string]bool{"FERRY_DATA_DIR": true}
	for _, m := range envRE.FindAllStringSubmatch(string(help), -1) {
		vars[m[1]] = true
	}
	for _, a := range args[1:] {
		if name, ok := strings.CutPrefix(a, "--"); ok {
			name, _, _ = strings.Cut(name, "=")
			if !flags[name] {
				t.Errorf("%s: `ferry %s` has no flag --%s", where, args[0], name)
			}
		}
	}
	for _, e := range env {
		if strings.HasPrefix(e, "FERRY_") && !vars[e] && !strings.HasPrefix(e, "FERRY_GATEWAY_") {
			t.Errorf("%s: `ferry %s` reads no %s", where, args[0], e)
		}
	}
}

func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(t, "../Dockerfile")
	stages := map[string]bool{}
	var last string
	for _, in := range ins {
		if !known[in.cmd] {
			t.Errorf("Dockerfile line %d: unknown instruction %s", in.line, in.cmd)
		}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			if len(f) != 3 || !strings.EqualFold(f[1], "AS") {
				t.Errorf("Dockerfile line %d: name every stage (FROM image AS name)", in.line)
				continue
			}
			stages[f[2]] = true
			last = f[2]
		}
		if in.cmd == "COPY" && strings.HasPrefix(in.args, "--from=") {
			from := strings.Fields(strings.TrimPrefix(in.args, "--from="))[0]
			if !stages[from] {
				t.Errorf("Dockerfile line %d: COPY --from=%s names no earlier stage", in.line, from)
			}
		}
	}
	if len(stages) < 3 || last != "runtime" {
		t.Fatalf("want a multi-stage build ending in the runtime stage, got %v (last %s)", stages, last)
	}
	var user, entry string
	for _, in := range ins {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entry = in.args
		}
	}
	if user == "" || strings.HasPrefix(user, "0") || user == "root" {
		t.Errorf("the runtime must not run as root (USER %q)", user)
	}
	if entry != `["ferry"]` {
		t.Errorf("ENTRYPOINT %s", entry)
	}
	b := ferryBinary(t)
	// The agent is static: no program interpreter, no shared libraries.
	f, err := elf.Open(b.agent)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("the agent binary needs a dynamic loader")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the agent binary links %v", libs)
	}
	if out, err := exec.Command(b.agent, "version").CombinedOutput(); err != nil {
		t.Errorf("ferry-agent version: %v %s", err, out)
	}
	if out, err := exec.Command(b.path, "version").CombinedOutput(); err != nil || !strings.Contains(string(out), "dev") {
		t.Errorf("ferry version: %v %s", err, out)
	}
}

func TestSystemdUnits(t *testing.T) {
	b := ferryBinary(t)
	env := map[string]bool{}
	ef, err := os.ReadFile("systemd/ferry.env")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(ef), "\n") {
		if k, _, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "# "), "="); ok && strings.HasPrefix(k, "FERRY_") {
			env[k] = true
		}
	}
	var names []string
	for n := range env {
		names = append(names, n)
	}
	sort.Strings(names)
	b.check(t, "ferry.env", []string{"serve"}, names)
	for _, unit := range []string{"ferry.service", "ferry-worker@.service", "ferry-gateway.service"} {
		data, err := os.ReadFile(filepath.Join("systemd", unit))
		if err != nil {
			t.Fatal(err)
		}
		sections := map[string]map[string]string{}
		var cur string
		for i, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			switch {
			case line == "" || strings.HasPrefix(line, "#"):
			case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
				cur = strings.Trim(line, "[]")
				sections[cur] = map[string]string{}
			default:
				k, v, ok := strings.Cut(line, "=")
				if !ok || cur == "" {
					t.Fatalf("%s line %d: not key=value in a section: %s", unit, i+1, line)
				}
				sections[cur][k] = v
			}
		}
		for _, s := range []string{"Unit", "Service", "Install"} {
			if sections[s] == nil {
				t.Errorf("%s: no [%s] section", unit, s)
			}
		}
		svc := sections["Service"]
		if svc["User"] == "" || svc["User"] == "root" || svc["NoNewPrivileges"] != "yes" {
			t.Errorf("%s: must run as a non-root user without new privileges", unit)
		}
		exe := strings.Fields(svc["ExecStart"])
		if len(exe) < 2 || exe[0] != "/usr/local/bin/ferry" {
			t.Fatalf("%s: ExecStart %q", unit, svc["ExecStart"])
		}
		b.check(t, unit, exe[1:], nil)
	}
}
