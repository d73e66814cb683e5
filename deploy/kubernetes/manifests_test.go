package kubernetes_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// decodeFile decodes every document of a manifest file into the Kubernetes API's own Go types (batch/v1
// Job, core/v1 ConfigMap and Secret), strictly: a field the API does not have, or a field given twice, is an
// error, as kubectl's server-side field validation makes it.
func decodeFile(path string) ([]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return decode(b)
}

func decode(b []byte) ([]any, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var objs []any
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading document %d: %w", i, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		var obj any
		switch tm.APIVersion + " " + tm.Kind {
		case "batch/v1 Job":
			obj = &batchv1.Job{}
		case "v1 ConfigMap":
			obj = &corev1.ConfigMap{}
		case "v1 Secret":
			obj = &corev1.Secret{}
		default:
			return nil, fmt.Errorf("document %d: unexpected kind %q %q", i, tm.APIVersion, tm.Kind)
		}
		// As the API server decodes: YAML to JSON (a duplicate key is an error), then sigs.k8s.io/json, whose
		// field names are case-sensitive (encoding/json would take procmount for procMount).
		j, err := yaml.YAMLToJSONStrict(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d (%s): %w", i, tm.Kind, err)
		}
		strict, err := kjson.UnmarshalStrict(j, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
		if err != nil {
			return nil, fmt.Errorf("document %d (%s): %w", i, tm.Kind, err)
		}
		if len(strict) > 0 {
			return nil, fmt.Errorf("document %d (%s): %w", i, tm.Kind, errors.Join(strict...))
		}
		objs = append(objs, obj)
	}
	return objs, nil
}

// manifests are deploy/kubernetes's files, decoded.
type manifests struct {
	job, fleet *batchv1.Job
	images     *corev1.ConfigMap
	secret     *corev1.Secret
}

func load(t *testing.T) manifests {
	t.Helper()
	var m manifests
	for _, f := range []string{"job.yaml", "fleet.yaml", "registry-secret.yaml"} {
		objs, err := decodeFile(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, o := range objs {
			switch o := o.(type) {
			case *batchv1.Job:
				if f == "job.yaml" {
					m.job = o
				} else {
					m.fleet = o
				}
			case *corev1.ConfigMap:
				m.images = o
			case *corev1.Secret:
				m.secret = o
			}
		}
	}
	if m.job == nil || m.fleet == nil || m.images == nil || m.secret == nil {
		t.Fatalf("want a Job in job.yaml, a Job and a ConfigMap in fleet.yaml, a Secret in registry-secret.yaml; got %+v", m)
	}
	return m
}

// TestDecodeStrict shows that the decoding refuses what the API server would: a misspelt field (procmount
// for procMount) and a field given twice.
func TestDecodeStrict(t *testing.T) {
	b, err := os.ReadFile("job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decode(b); err != nil {
		t.Fatalf("job.yaml: %v", err)
	}
	for name, bad := range map[string][]byte{
		"unknown field": bytes.Replace(b, []byte("procMount: Unmasked"), []byte("procmount: Unmasked"), 1),
		"duplicate":     bytes.Replace(b, []byte("hostUsers: false"), []byte("hostUsers: false\n      hostUsers: true"), 1),
		"wrong type":    bytes.Replace(b, []byte("runAsUser: 1000"), []byte("runAsUser: one"), 1),
	} {
		if bytes.Equal(bad, b) {
			t.Fatalf("%s: the replacement matched nothing", name)
		}
		if _, err := decode(bad); err == nil {
			t.Errorf("%s: decoded without an error", name)
		}
	}
}

// checkPod checks what the README says of the pods: rootless, no capability, no privilege escalation, only
// the two relaxations slimoci needs, resources set, registry credentials from the Secret at DOCKER_CONFIG.
func checkPod(t *testing.T, name string, job *batchv1.Job, secret *corev1.Secret) {
	t.Helper()
	spec := job.Spec.Template.Spec
	errorf := func(format string, args ...any) { t.Errorf(name+": "+format, args...) }
	if spec.RestartPolicy != corev1.RestartPolicyNever {
		errorf("restartPolicy %q, want Never (podFailurePolicy needs it)", spec.RestartPolicy)
	}
	if spec.HostUsers == nil || *spec.HostUsers {
		errorf("hostUsers is not false: procMount Unmasked needs the pod in a user namespace")
	}
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 1000 {
		errorf("pod security context %+v: want runAsNonRoot, runAsUser 1000", psc)
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeLocalhost ||
		psc.SeccompProfile.LocalhostProfile == nil || *psc.SeccompProfile.LocalhostProfile != "slimoci.json" {
		errorf("seccomp profile is not Localhost slimoci.json (deploy/seccomp.json installed on the nodes)")
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", name, len(spec.Containers))
	}
	c := spec.Containers[0]
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Fatalf("%s: no container security context", name)
	case sc.Privileged != nil && *sc.Privileged:
		errorf("privileged")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		errorf("allowPrivilegeEscalation is not false")
	case sc.Capabilities == nil || len(sc.Capabilities.Add) != 0 || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL":
		errorf("capabilities %+v: want drop ALL, add none", sc.Capabilities)
	case sc.ProcMount == nil || *sc.ProcMount != corev1.UnmaskedProcMount:
		errorf("procMount is not Unmasked")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		errorf("root filesystem is not read-only")
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage} {
		if _, ok := c.Resources.Requests[r]; !ok {
			errorf("no %s request", r)
		}
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceMemory, corev1.ResourceEphemeralStorage} {
		req, lim := c.Resources.Requests[r], c.Resources.Limits[r]
		if lim.IsZero() || lim.Cmp(req) < 0 {
			errorf("%s limit %s is unset or under its request %s", r, lim.String(), req.String())
		}
	}
	// The credentials: DOCKER_CONFIG names the directory where the Secret's docker config is config.json.
	dockerConfig := env(c, "DOCKER_CONFIG")
	var mounted bool
	for _, m := range c.VolumeMounts {
		if m.MountPath != dockerConfig {
			continue
		}
		v := volume(spec, m.Name)
		if v == nil || v.Secret == nil || v.Secret.SecretName != secret.Name || !m.ReadOnly {
			errorf("the volume at DOCKER_CONFIG %s is not the Secret %s, read-only", dockerConfig, secret.Name)
			continue
		}
		for _, it := range v.Secret.Items {
			if it.Key == corev1.DockerConfigJsonKey && it.Path == "config.json" {
				mounted = true
			}
		}
	}
	if !mounted {
		errorf("the Secret's %s is not mounted as $DOCKER_CONFIG/config.json (DOCKER_CONFIG %q)", corev1.DockerConfigJsonKey, dockerConfig)
	}
	// The work directory is an emptyDir, and the ephemeral-storage limit covers it.
	for _, m := range c.VolumeMounts {
		if m.MountPath == "/work" {
			v := volume(spec, m.Name)
			if v == nil || v.EmptyDir == nil || v.EmptyDir.SizeLimit == nil {
				errorf("/work is not an emptyDir with a size limit")
			} else if lim := c.Resources.Limits[corev1.ResourceEphemeralStorage]; v.EmptyDir.SizeLimit.Cmp(lim) > 0 {
				errorf("/work's size limit %s is over the ephemeral-storage limit %s", v.EmptyDir.SizeLimit, lim.String())
			}
		}
	}
	if job.Spec.PodFailurePolicy == nil || len(job.Spec.PodFailurePolicy.Rules) == 0 {
		errorf("no podFailurePolicy: a usage, app or verify failure would be retried")
	}
}

func env(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

func volume(spec corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

func TestJob(t *testing.T) {
	m := load(t)
	checkPod(t, "job.yaml", m.job, m.secret)
	c := m.job.Spec.Template.Spec.Containers[0]
	if !strings.HasSuffix(c.Image, "slimoci:latest") || len(c.Command) != 0 {
		t.Errorf("job.yaml runs %s with command %q: want slimoci's own image and its entrypoint", c.Image, c.Command)
	}
	if got := strings.Join(c.Args, " "); !strings.HasPrefix(got, "build ") || !strings.HasSuffix(got, " $(IMAGE)") ||
		!strings.Contains(got, " --json") || !strings.Contains(got, " --push") {
		t.Errorf("args %q: want build --json --push ... $(IMAGE)", got)
	}
	if env(c, "IMAGE") == "" {
		t.Error("no IMAGE")
	}
	if m.job.Spec.CompletionMode != nil && *m.job.Spec.CompletionMode != batchv1.NonIndexedCompletion {
		t.Errorf("job.yaml's completion mode %s", *m.job.Spec.CompletionMode)
	}
}

func TestFleet(t *testing.T) {
	m := load(t)
	checkPod(t, "fleet.yaml", m.fleet, m.secret)
	spec := m.fleet.Spec
	if spec.CompletionMode == nil || *spec.CompletionMode != batchv1.IndexedCompletion {
		t.Errorf("completionMode is not Indexed")
	}
	lines := imageLines(m.images.Data["images"])
	if spec.Completions == nil || int(*spec.Completions) != len(lines) {
		t.Errorf("completions %v, want the ConfigMap's %d images", spec.Completions, len(lines))
	}
	if spec.BackoffLimitPerIndex == nil {
		t.Error("no backoffLimitPerIndex: one image's failure would count against all")
	}
	pod := spec.Template.Spec
	var listed bool
	for _, v := range pod.Volumes {
		if v.ConfigMap != nil && v.ConfigMap.Name == m.images.Name {
			listed = true
		}
	}
	if !listed {
		t.Errorf("the pod does not mount the ConfigMap %s", m.images.Name)
	}
	// The fleet's pod is the Job's but for the image list, its command, and the image with a shell.
	jobPod := m.job.Spec.Template.Spec
	jc, fc := jobPod.Containers[0], pod.Containers[0]
	same := func(what string, a, b any) {
		ja, _ := yaml.Marshal(a)
		jb, _ := yaml.Marshal(b)
		if !bytes.Equal(ja, jb) {
			t.Errorf("fleet.yaml's %s differs from job.yaml's:\n%s\n%s", what, jb, ja)
		}
	}
	same("pod security context", jobPod.SecurityContext, pod.SecurityContext)
	same("container security context", jc.SecurityContext, fc.SecurityContext)
	same("resources", jc.Resources, fc.Resources)
	same("hostUsers", jobPod.HostUsers, pod.HostUsers)
	if !strings.HasSuffix(fc.Image, "slimoci:shell") {
		t.Errorf("fleet.yaml runs %s: its script needs the image with a shell", fc.Image)
	}
}

// imageLines are the ConfigMap's images, one a line.
func imageLines(s string) []string {
	return strings.Split(strings.TrimRight(s, "\n"), "\n")
}

// The resources' numbers, as the README gives them: a test of the README's Kubernetes section against them
// would be a test of prose; this only keeps the manifests' sizes above the measured peak of the Java sample
// (the largest), with room.
func TestResourcesAboveMeasured(t *testing.T) {
	m := load(t)
	c := m.job.Spec.Template.Spec.Containers[0]
	// Measured (README, "Kubernetes"): the Java sample's build peaked at measuredMemory of cgroup memory and
	// measuredDisk in its work directory.
	measuredMemory, measuredDisk := resource.MustParse(measuredPeakMemory), resource.MustParse(measuredPeakDisk)
	if lim := c.Resources.Limits[corev1.ResourceMemory]; lim.Cmp(measuredMemory) <= 0 {
		t.Errorf("memory limit %s is not above the measured peak %s", lim.String(), measuredPeakMemory)
	}
	if req := c.Resources.Requests[corev1.ResourceEphemeralStorage]; req.Cmp(measuredDisk) <= 0 {
		t.Errorf("ephemeral-storage request %s is not above the measured peak %s", req.String(), measuredPeakDisk)
	}
}

// Measured on this project's kind of machine (2 cores), slimoci build --push of the Java sample (534 MB)
// with its work directory on disk, as the Job runs it: the peak of its memory cgroup (page cache of the
// unpacked tree included; slimoci's own peak RSS was 155 MB) and of the work directory's size (README,
// "Kubernetes").
const (
	measuredPeakMemory = "993050624"
	measuredPeakDisk   = "1074626026"
)
