package kubernetes_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/slimoci/slimoci/internal/testbed"
)

// No cluster runs here, and podman 4.3's `kube play` takes Pods and Deployments, not Jobs, nor the pod
// fields this one depends on (hostUsers, procMount). So the Jobs' pods run as `podman run` with each field
// of the pod translated to the flag that does the same; a field this does not translate fails the test,
// so that a manifest cannot grow one the local run ignores.
type podRun struct {
	t     *testing.T
	spec  corev1.PodSpec
	env   map[string]string // added to the container's env (the Job controller's JOB_COMPLETION_INDEX)
	files map[string]map[string]string
	tmp   string
}

// args translates the pod into podman run's arguments.
func (p *podRun) args() []string {
	t, spec := p.t, p.spec
	c := spec.Containers[0]
	psc, sc := spec.SecurityContext, c.SecurityContext
	args := []string{"run", "--rm",
		// The pod's network reaches the registry; here the registry listens on the host's loopback.
		"--network", "host",
		"--user", fmt.Sprintf("%d:%d", *psc.RunAsUser, *psc.RunAsGroup),
	}
	if spec.HostUsers != nil && !*spec.HostUsers {
		// The pod in a user namespace of its own: its ids are not the host's (uid 1000 is 101000 here).
		args = append(args, "--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536")
	}
	switch psc.SeccompProfile.Type {
	case corev1.SeccompProfileTypeUnconfined:
		args = append(args, "--security-opt", "seccomp=unconfined")
	case corev1.SeccompProfileTypeLocalhost:
		// The node's profile is the project's: deploy/seccomp.json.
		if *psc.SeccompProfile.LocalhostProfile != "slimoci.json" {
			t.Fatalf("Localhost profile %s: only slimoci.json (deploy/seccomp.json) is known", *psc.SeccompProfile.LocalhostProfile)
		}
		profile, err := filepath.Abs("../seccomp.json")
		if err != nil {
			t.Fatal(err)
		}
		args = append(args, "--security-opt", "seccomp="+profile)
	default:
		t.Fatalf("seccomp profile %s not translated", psc.SeccompProfile.Type)
	}
	if sc.ProcMount != nil && *sc.ProcMount == corev1.UnmaskedProcMount {
		args = append(args, "--security-opt", "unmask=ALL")
	}
	if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
		args = append(args, "--security-opt", "no-new-privileges")
	}
	for _, d := range sc.Capabilities.Drop {
		args = append(args, "--cap-drop", string(d))
	}
	if sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem {
		// Kubernetes mounts nothing writable of its own: no tmpfs on /tmp, /run, /var/tmp.
		args = append(args, "--read-only", "--read-only-tmpfs=false")
	}
	if m, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		args = append(args, "--memory", strconv.FormatInt(m.Value(), 10))
	}
	if cpu, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
		args = append(args, "--cpus", cpu.AsDec().String())
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	for k, v := range p.env {
		env[k] = v
	}
	for k, v := range env {
		args = append(args, "-e", k+"="+v)
	}
	for _, m := range c.VolumeMounts {
		args = append(args, "-v", p.volume(m)+":"+m.MountPath+map[bool]string{true: ":ro", false: ""}[m.ReadOnly])
	}
	if len(c.Command) > 0 {
		ep, _ := json.Marshal(c.Command)
		args = append(args, "--entrypoint", string(ep))
	}
	args = append(args, c.Image)
	for _, a := range c.Args {
		args = append(args, expandVars(a, env))
	}
	return args
}

// volume makes the host directory a volume mount gets: an emptyDir is an empty directory anyone may write
// (as the kubelet makes it); a Secret's or ConfigMap's are their items as files, from p.files when the
// test gives them, else from the manifest.
func (p *podRun) volume(m corev1.VolumeMount) string {
	t := p.t
	v := volume(p.spec, m.Name)
	if v == nil {
		t.Fatalf("volume %s is not in the pod", m.Name)
	}
	dir := filepath.Join(p.tmp, m.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	switch {
	case v.EmptyDir != nil:
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
	case v.Secret != nil, v.ConfigMap != nil:
		data := p.files[m.Name]
		var items []corev1.KeyToPath
		if v.Secret != nil {
			items = v.Secret.Items
		} else {
			items = v.ConfigMap.Items
		}
		if len(items) == 0 {
			for k, c := range data {
				write(k, c)
			}
			break
		}
		for _, it := range items {
			c, ok := data[it.Key]
			if !ok {
				t.Fatalf("volume %s: no test content for key %s", m.Name, it.Key)
			}
			write(it.Path, c)
		}
	default:
		t.Fatalf("volume %s: kind not translated", m.Name)
	}
	return dir
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// expandVars expands $(NAME) from the container's env, as the kubelet does in command and args.
func expandVars(s string, env map[string]string) string {
	return varRef.ReplaceAllStringFunc(s, func(m string) string {
		if v, ok := env[m[2:len(m)-1]]; ok {
			return v
		}
		return m
	})
}

func (p *podRun) run(ctx context.Context) (stdout, stderr []byte, err error) {
	cmd := exec.CommandContext(ctx, "podman", p.args()...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.Bytes(), e.Bytes(), err
}

// TestE2EPods runs job.yaml's pod on the python sample, then fleet.yaml's pod for index 1 of a list whose
// line 2 is the python sample, and for an index past the list's end. Each build pushes the slim image next to
// the fat one; the fleet's log is one JSON line.
func TestE2EPods(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: not with -short")
	}
	bed, why := testbed.Find()
	if bed == nil {
		t.Skip(why)
	}
	m := load(t)
	for _, j := range []string{m.job.Spec.Template.Spec.Containers[0].Image, m.fleet.Spec.Template.Spec.Containers[0].Image} {
		if err := exec.Command("podman", "image", "exists", j).Run(); err != nil {
			t.Skipf("no image %s: run `make image-shell` (make test does)", j)
		}
	}
	// A registry that wants a password: the pods have it only from the Secret.
	const user, password = "fleet", "s3cret"
	reg, err := testbed.StartAuthRegistry(user, password)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	fat, slim := reg.Addr+"/samples/python:latest", reg.Addr+"/samples/python.slim:latest"
	if _, err := testbed.Skopeo(ctx, "copy", "--quiet", "--dest-tls-verify=false", "--dest-creds", user+":"+password,
		"oci:"+bed.Layout("python")+":latest", "docker://"+fat); err != nil {
		t.Fatal(err)
	}
	// The Secret's .dockerconfigjson, as kubectl create secret docker-registry writes it.
	secret := map[string]string{corev1.DockerConfigJsonKey: fmt.Sprintf(`{"auths":{%q:{"username":%q,"password":%q,"auth":%q}}}`,
		reg.Addr, user, password, base64.StdEncoding.EncodeToString([]byte(user+":"+password)))}

	checkSlim := func(t *testing.T, summary []byte) {
		t.Helper()
		sum, err := testbed.CheckPushed(ctx, summary, slim, user+":"+password)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Image != "docker://"+fat {
			t.Errorf("the summary's source is %s, want %s", sum.Image, fat)
		}
	}

	// jobSpec is job.yaml's pod with IMAGE the test registry's python sample.
	jobSpec := func() corev1.PodSpec {
		spec := *m.job.Spec.Template.Spec.DeepCopy()
		for i, e := range spec.Containers[0].Env {
			if e.Name == "IMAGE" {
				spec.Containers[0].Env[i].Value = fat
			}
		}
		return spec
	}
	t.Run("job", func(t *testing.T) {
		spec := jobSpec()
		p := &podRun{t: t, spec: spec, tmp: t.TempDir(), files: map[string]map[string]string{"registry": secret}}
		out, errOut, err := p.run(ctx)
		if err != nil {
			t.Fatalf("podman %s: %v\n%s", strings.Join(p.args(), " "), err, errOut)
		}
		checkSlim(t, out)
	})

	// The credentials are needed: with the manifest's placeholder Secret (another registry's), the registry
	// refuses the pull (exit 3).
	t.Run("job without the registry's credentials", func(t *testing.T) {
		p := &podRun{t: t, spec: jobSpec(), tmp: t.TempDir(), files: map[string]map[string]string{
			"registry": {corev1.DockerConfigJsonKey: m.secret.StringData[corev1.DockerConfigJsonKey]}}}
		_, errOut, err := p.run(ctx)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 || !bytes.Contains(errOut, []byte("401")) && !bytes.Contains(errOut, []byte("UNAUTHORIZED")) {
			t.Errorf("without credentials: %v, stderr %q: want exit 3, the registry's refusal", err, errOut)
		}
	})

	// The relaxation is needed: the same pod with the default procMount fails before any work, saying so.
	t.Run("job without procMount Unmasked", func(t *testing.T) {
		spec := jobSpec()
		spec.Containers[0].SecurityContext.ProcMount = nil
		p := &podRun{t: t, spec: spec, tmp: t.TempDir(), files: map[string]map[string]string{"registry": secret}}
		out, errOut, err := p.run(ctx)
		if err == nil || len(out) != 0 || !bytes.Contains(errOut, []byte("procMount: Unmasked")) {
			t.Errorf("with /proc masked: %v, stdout %q, stderr %q: want a failure naming procMount: Unmasked", err, out, errOut)
		}
	})

	fleet := func(t *testing.T, index int) (*podRun, []byte, []byte, error) {
		p := &podRun{t: t, spec: *m.fleet.Spec.Template.Spec.DeepCopy(), tmp: t.TempDir(),
			env: map[string]string{"JOB_COMPLETION_INDEX": strconv.Itoa(index)},
			files: map[string]map[string]string{
				"registry": secret,
				"images":   {"images": reg.Addr + "/samples/absent:latest\n" + fat + "\n"},
			}}
		out, errOut, err := p.run(ctx)
		return p, out, errOut, err
	}
	t.Run("fleet", func(t *testing.T) {
		p, out, errOut, err := fleet(t, 1)
		if err != nil {
			t.Fatalf("podman %s: %v\n%s", strings.Join(p.args(), " "), err, errOut)
		}
		if n := bytes.Count(out, []byte("\n")); n != 1 || !bytes.HasSuffix(out, []byte("}\n")) {
			t.Errorf("the log is %d lines, want one JSON line:\n%s", n, out)
		}
		checkSlim(t, out)
	})
	t.Run("fleet past the list", func(t *testing.T) {
		_, out, errOut, err := fleet(t, 2)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || len(out) != 0 ||
			!bytes.Contains(errOut, []byte("line 3 of the ConfigMap slimoci-images is empty or missing")) {
			t.Errorf("index 2 of 2 lines: %v, stdout %q, stderr %q: want exit 2 (podFailurePolicy fails the index) and the line named", err, out, errOut)
		}
	})
}
