package ci_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v4"

	"github.com/slimoci/slimoci/internal/testbed"
)

// The parts of GitHub's workflow syntax the recipe uses. Decoding refuses any other field, so a misspelt
// key (runs_on, step "env" at the wrong level) fails here rather than on GitHub.
type workflow struct {
	Name        string            `yaml:"name"`
	On          map[string]any    `yaml:"on"`
	Permissions map[string]string `yaml:"permissions"`
	Env         map[string]string `yaml:"env"`
	Jobs        map[string]ghJob  `yaml:"jobs"`
}

type ghJob struct {
	Needs   string            `yaml:"needs"`
	RunsOn  string            `yaml:"runs-on"`
	Outputs map[string]string `yaml:"outputs"`
	Steps   []ghStep          `yaml:"steps"`
}

type ghStep struct {
	Name string            `yaml:"name"`
	ID   string            `yaml:"id"`
	If   string            `yaml:"if"`
	Uses string            `yaml:"uses"`
	With map[string]string `yaml:"with"`
	Env  map[string]string `yaml:"env"`
	Run  string            `yaml:"run"`
}

// The parts of GitLab's .gitlab-ci.yml the recipe uses: top-level stages and jobs.
type gitlabJob struct {
	Stage     string            `yaml:"stage"`
	Needs     []string          `yaml:"needs"`
	Image     any               `yaml:"image"`
	Variables map[string]string `yaml:"variables"`
	Script    []string          `yaml:"script"`
	Artifacts *struct {
		When    string   `yaml:"when"`
		Paths   []string `yaml:"paths"`
		Reports struct {
			Dotenv string `yaml:"dotenv"`
		} `yaml:"reports"`
	} `yaml:"artifacts"`
}

func decodeStrict(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func loadWorkflow(t *testing.T) workflow {
	var w workflow
	decodeStrict(t, "github-actions.yml", &w)
	return w
}

func loadGitLab(t *testing.T) (stages []string, jobs map[string]gitlabJob) {
	var top map[string]yaml.Node
	decodeStrict(t, "gitlab-ci.yml", &top)
	jobs = map[string]gitlabJob{}
	for k, n := range top {
		if k == "stages" {
			if err := n.Decode(&stages); err != nil {
				t.Fatalf("stages: %v", err)
			}
			continue
		}
		// yaml.Node.Decode has no KnownFields: re-encode and decode the job strictly.
		b, err := yaml.Marshal(&n)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		var j gitlabJob
		if err := dec.Decode(&j); err != nil {
			t.Fatalf("job %s: %v", k, err)
		}
		jobs[k] = j
	}
	return stages, jobs
}

// expression is a GitHub expression, ${{ ... }}.
var expression = regexp.MustCompile(`\$\{\{[^}]*\}\}`)

func TestGitHubActionsStructure(t *testing.T) {
	w := loadWorkflow(t)
	slim, ok := w.Jobs["slim"]
	if !ok || slim.Needs != "build" {
		t.Fatalf("want a job slim that needs build; jobs %v", w.Jobs)
	}
	if !strings.HasPrefix(slim.RunsOn, "ubuntu-") {
		t.Errorf("slim runs on %q: podman is on GitHub's ubuntu runners", slim.RunsOn)
	}
	if w.Permissions["packages"] != "write" {
		t.Error("no packages: write permission: the push of the slim image would be refused")
	}
	step := slimStep(t, slim)
	for _, s := range slim.Steps {
		// Expressions go through env: written into a script, a value is run as shell (script injection).
		if m := expression.FindString(s.Run); m != "" {
			t.Errorf("step %q writes %s into its script", s.Name, m)
		}
	}
	for _, want := range []string{"--security-opt seccomp=unconfined", "--security-opt unmask=ALL", "--user 1000:1000",
		"build --json", "--push", "DOCKER_CONFIG=", "$GITHUB_STEP_SUMMARY", "$GITHUB_OUTPUT"} {
		if !strings.Contains(step.Run, want) {
			t.Errorf("the slim step does not say %q", want)
		}
	}
	for _, bad := range []string{"--privileged", "--cap-add"} {
		if strings.Contains(step.Run, bad) {
			t.Errorf("the slim step says %s", bad)
		}
	}
	for _, out := range []string{"image", "summary"} {
		if slim.Outputs[out] != "${{ steps."+step.ID+".outputs."+out+" }}" {
			t.Errorf("job output %s is %q, want the slim step's", out, slim.Outputs[out])
		}
	}
}

func slimStep(t *testing.T, j ghJob) ghStep {
	t.Helper()
	for _, s := range j.Steps {
		if strings.Contains(s.Run, "podman run") && strings.Contains(s.Run, " build ") {
			if s.ID == "" {
				t.Fatalf("the slim step %q has no id: its outputs cannot be read", s.Name)
			}
			return s
		}
	}
	t.Fatal("no step runs slimoci build in podman")
	return ghStep{}
}

func TestGitLabStructure(t *testing.T) {
	stages, jobs := loadGitLab(t)
	slim, ok := jobs["slim"]
	if !ok {
		t.Fatalf("no job slim: %v", jobs)
	}
	if len(stages) == 0 || stages[len(stages)-1] != slim.Stage || len(slim.Needs) != 1 || slim.Needs[0] != "build" {
		t.Errorf("slim: stage %q of %v, needs %v: want the last stage, after build", slim.Stage, stages, slim.Needs)
	}
	img, _ := slim.Image.(map[string]any)
	if img["name"] != "$SLIMOCI_IMAGE" || fmt.Sprint(img["entrypoint"]) != "[]" {
		t.Errorf("slim's image %v: want SLIMOCI_IMAGE with the entrypoint cleared", slim.Image)
	}
	if a := slim.Artifacts; a == nil || a.Reports.Dotenv != "slimoci.env" || a.When != "always" {
		t.Errorf("artifacts %+v: want the dotenv report slimoci.env, kept always", slim.Artifacts)
	}
	var build bool
	for _, l := range slim.Script {
		if strings.HasPrefix(l, "slimoci build --json") && strings.Contains(l, "--push") && strings.HasSuffix(l, "> slimoci.json") {
			build = true
		}
	}
	if !build {
		t.Errorf("no script line slimoci build --json --push ... > slimoci.json: %q", slim.Script)
	}
}

// The registry's credentials in the end-to-end tests: the pipeline's (GitHub's actor and token, GitLab's
// CI_REGISTRY_USER and CI_REGISTRY_PASSWORD).
const user, password = "ci", "s3cret"

// e2e runs the recipes' slim jobs against the test bed: the python sample pushed to a real registry where
// the pipeline would have pushed it, slimoci's image run with podman as the runner would.
type e2e struct {
	reg  *testbed.Registry
	ctx  context.Context
	tmp  string
	fat  string // the fat image's repository in the registry, without the registry
	slim string // where the slim image should go, with the registry
}

func startE2E(t *testing.T, image string) *e2e {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: not with -short")
	}
	bed, why := testbed.Find()
	if bed == nil {
		t.Skip(why)
	}
	if err := exec.Command("podman", "image", "exists", image).Run(); err != nil {
		t.Skipf("no image %s: run `make image-shell` (make test does)", image)
	}
	// The registry wants the pipeline's credentials: the recipes must hand them to slimoci.
	reg, err := testbed.StartAuthRegistry(user, password)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	e := &e2e{reg: reg, ctx: ctx, tmp: t.TempDir(), fat: "samples/python"}
	if _, err := testbed.Skopeo(ctx, "copy", "--quiet", "--dest-tls-verify=false", "--dest-creds", user+":"+password,
		"oci:"+bed.Layout("python")+":latest", "docker://"+reg.Addr+"/"+e.fat+":latest"); err != nil {
		t.Fatal(err)
	}
	e.slim = reg.Addr + "/" + e.fat + ".slim:latest"
	// A test's temporary directory is 0700: the container's uid 1000 must reach what the recipe mounts.
	if err := os.Chmod(e.tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	return e
}

// checkSummary checks a build's JSON summary and that the registry has the slim image it names.
func (e *e2e) checkSummary(t *testing.T, b []byte) string {
	t.Helper()
	sum, err := testbed.CheckPushed(e.ctx, b, e.slim, user+":"+password)
	if err != nil {
		t.Fatal(err)
	}
	return sum.Digest
}

// TestE2EGitHubActions runs the slim job's steps as a GitHub runner would: each `run:` with bash -eo pipefail
// (GitHub's shell for ubuntu runners) and the step's env, expressions replaced by the test bed's values.
// Steps not run: the sysctl (an Ubuntu kernel's setting, for the runner's own VM) and `uses:` actions.
func TestE2EGitHubActions(t *testing.T) {
	const slimoci = "localhost/slimoci:latest"
	e := startE2E(t, slimoci)
	w := loadWorkflow(t)
	// podman login and pull reach the plain-HTTP test registry only when it is listed as insecure.
	regConf := filepath.Join(e.tmp, "registries.conf")
	if err := os.WriteFile(regConf, []byte(fmt.Sprintf("[[registry]]\nlocation = %q\ninsecure = true\n", e.reg.Addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	runnerTemp := filepath.Join(e.tmp, "runner")
	if err := os.Mkdir(runnerTemp, 0o755); err != nil {
		t.Fatal(err)
	}
	output, summary := filepath.Join(e.tmp, "output"), filepath.Join(e.tmp, "step-summary")
	values := map[string]string{ // what the expressions are on this test bed
		"${{ vars.REGISTRY }}":        e.reg.Addr,
		"${{ github.repository }}":    "Samples/Python", // GitHub's may have capitals: the recipe lowercases it
		"${{ github.sha }}":           "latest",
		"${{ github.actor }}":         user,
		"${{ secrets.GITHUB_TOKEN }}": password,
		"${{ vars.SLIMOCI_IMAGE }}":   slimoci,
		"${{ vars.SLIMOCI_FLAGS }}":   "",
	}
	expand := func(v string) string {
		return expression.ReplaceAllStringFunc(v, func(x string) string {
			r, ok := values[x]
			if !ok {
				t.Fatalf("expression %s has no test value", x)
			}
			return r
		})
	}
	env := append(os.Environ(), "RUNNER_TEMP="+runnerTemp, "GITHUB_OUTPUT="+output, "GITHUB_STEP_SUMMARY="+summary,
		"CONTAINERS_REGISTRIES_CONF="+regConf)
	for k, v := range w.Env {
		env = append(env, k+"="+expand(v))
	}
	for _, s := range w.Jobs["slim"].Steps {
		if s.Run == "" || strings.Contains(s.Run, "sysctl") {
			t.Logf("not run here: %q", s.Name)
			continue
		}
		cmd := exec.CommandContext(e.ctx, "bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", s.Run)
		cmd.Env = append([]string(nil), env...)
		for k, v := range s.Env {
			cmd.Env = append(cmd.Env, k+"="+expand(v))
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("step %q: %v\n%s", s.Name, err, out)
		}
	}
	e.slim = e.reg.Addr + "/samples/python.slim:latest"
	outputs, err := os.ReadFile(output)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(outputs)), "\n") {
		k, v, _ := strings.Cut(l, "=")
		got[k] = v
	}
	digest := e.checkSummary(t, []byte(got["summary"]))
	if want := e.slim + "@" + digest; got["image"] != want {
		t.Errorf("output image=%q, want %q", got["image"], want)
	}
	md, err := os.ReadFile(summary)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(md, []byte("### slimoci: ")) || !bytes.Contains(md, []byte(e.slim+"@"+digest+": ")) || !bytes.Contains(md, []byte("```json\n{")) {
		t.Errorf("step summary:\n%s", md)
	}
}

// runnerSecurityOpt is what the README tells a GitLab runner's admin to set: [runners.docker] security_opt.
var runnerSecurityOpt = []string{"seccomp=unconfined", "unmask=ALL"}

// TestE2EGitLabCI runs the slim job's script as a GitLab runner's docker executor on podman's socket would:
// through podman's Docker-compatible API, the job's image (slimoci's with a shell, entrypoint cleared) with
// the runner's security_opt, the project directory mounted, the lines in one sh -e, the variables expanded
// by GitLab first.
func TestE2EGitLabCI(t *testing.T) {
	const slimociShell = "localhost/slimoci:shell"
	e := startE2E(t, slimociShell)
	_, jobs := loadGitLab(t)
	job := jobs["slim"]
	project := filepath.Join(e.tmp, "project")
	// The runner's checkout is writable by the job's user (it clones with umask 0000).
	if err := os.Mkdir(project, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(project, 0o777); err != nil {
		t.Fatal(err)
	}
	ci := map[string]string{ // GitLab's predefined variables on this test bed
		"CI_REGISTRY":          e.reg.Addr,
		"CI_REGISTRY_IMAGE":    e.reg.Addr + "/" + e.fat,
		"CI_COMMIT_SHORT_SHA":  "latest",
		"CI_REGISTRY_USER":     user,
		"CI_REGISTRY_PASSWORD": password,
		"CI_PROJECT_DIR":       "/builds/project",
		"SLIMOCI_IMAGE":        slimociShell,
	}
	vars := map[string]string{}
	for k, v := range ci {
		vars[k] = v
	}
	for k, v := range job.Variables {
		vars[k] = os.Expand(v, func(n string) string { return ci[n] })
	}
	var env []string
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	image := os.Expand(job.Image.(map[string]any)["name"].(string), func(n string) string { return vars[n] })
	// The container as the runner's docker executor asks for it through the Docker API, here podman's.
	create := map[string]any{
		"Image":      image,
		"Entrypoint": []string{""}, // the job's image: entrypoint: [""]
		"Cmd":        []string{"/bin/sh", "-ec", strings.Join(job.Script, "\n")},
		"Env":        env,
		"WorkingDir": "/builds/project",
		"HostConfig": map[string]any{
			"Binds":       []string{project + ":/builds/project"},
			"NetworkMode": "host", // the test registry is on the host's loopback
			"SecurityOpt": runnerSecurityOpt,
		},
	}
	if code, logs := runDockerAPI(t, e, create); code != 0 {
		t.Fatalf("the slim job's script exited %d:\n%s", code, logs)
	}
	sum, err := os.ReadFile(filepath.Join(project, "slimoci.json"))
	if err != nil {
		t.Fatal(err)
	}
	digest := e.checkSummary(t, sum)
	dotenv, err := os.ReadFile(filepath.Join(project, "slimoci.env"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "SLIM_IMAGE=" + e.slim + "@" + digest + "\n"; string(dotenv) != want {
		t.Errorf("slimoci.env is %q, want %q", dotenv, want)
	}
	for _, a := range job.Artifacts.Paths {
		if _, err := os.Stat(filepath.Join(project, a)); err != nil {
			t.Errorf("artifact %s: %v", a, err)
		}
	}

	// On a runner without unmask=ALL the API masks /proc, and the job fails saying what the runner lacks.
	if err := os.RemoveAll(filepath.Join(project, "slimoci-state")); err != nil {
		t.Fatal(err)
	}
	create["HostConfig"].(map[string]any)["SecurityOpt"] = []string{"seccomp=unconfined"}
	if code, logs := runDockerAPI(t, e, create); code == 0 || !strings.Contains(logs, "unmask=ALL") {
		t.Errorf("without unmask=ALL: exit %d, logs:\n%s\nwant a failure naming unmask=ALL", code, logs)
	}
}

// runDockerAPI runs a container through podman's Docker-compatible API, as a docker executor does: create,
// start, wait, logs. It starts `podman system service` on a socket of its own and stops it at the end.
func runDockerAPI(t *testing.T, e *e2e, create map[string]any) (int, string) {
	t.Helper()
	sock := filepath.Join(e.tmp, "podman.sock")
	svc := exec.Command("podman", "system", "service", "--time=0", "unix://"+sock)
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { svc.Process.Kill(); svc.Wait() }()
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	call := func(method, path string, body any, out any) {
		t.Helper()
		var r io.Reader
		if body != nil {
			b, err := json.Marshal(body)
			if err != nil {
				t.Fatal(err)
			}
			r = bytes.NewReader(b)
		}
		req, err := http.NewRequestWithContext(e.ctx, method, "http://podman/v1.41"+path, r)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %s: %s", method, path, resp.Status, b)
		}
		if out != nil {
			if err := json.Unmarshal(b, out); err != nil {
				t.Fatalf("%s %s: %v: %s", method, path, err, b)
			}
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("podman system service did not listen in 15 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	var created struct{ Id string }
	call("POST", "/containers/create", create, &created)
	defer call("DELETE", "/containers/"+created.Id+"?force=1", nil, nil)
	call("POST", "/containers/"+created.Id+"/start", nil, nil)
	var waited struct{ StatusCode int }
	call("POST", "/containers/"+created.Id+"/wait", nil, &waited)
	req, err := http.NewRequestWithContext(e.ctx, "GET", "http://podman/v1.41/containers/"+created.Id+"/logs?stdout=1&stderr=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	logs, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return waited.StatusCode, string(logs)
}
