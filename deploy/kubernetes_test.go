package deploy

import (
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// The Kubernetes variants: one directory each, applied with kubectl apply -k.
const (
	kubernetesSQLite   = "kubernetes/sqlite"
	kubernetesPostgres = "kubernetes/postgres"
)

// imagePort is the port the image's `serve` listens on (its default --addr).
const imagePort = 8080

// decoder decodes YAML manifests into the Kubernetes API types their
// apiVersion and kind name, refusing unknown and duplicate fields.
func decoder(t *testing.T) runtime.Decoder {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{appsv1.AddToScheme, corev1.AddToScheme, policyv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	return json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme,
		json.SerializerOptions{Yaml: true, Strict: true})
}

// kustomization is the part of kustomize's Kustomization the manifests use;
// decoded strictly, so that a kustomize feature the tests do not follow (a
// patch, a generator) shows up as a failure here rather than going unchecked.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewTag  string `json:"newTag"`
		NewName string `json:"newName"`
		Digest  string `json:"digest"`
	} `json:"images"`
}

// variant is one directory's objects, decoded.
type variant struct {
	dir        string
	deployment *appsv1.Deployment
	services   []*corev1.Service
	claims     []*corev1.PersistentVolumeClaim
	secrets    []*corev1.Secret
	budgets    []*policyv1.PodDisruptionBudget
}

// readVariant decodes every manifest of dir: those its kustomization.yaml
// lists, and the *.example.yaml files people edit and apply themselves. It
// fails for a manifest the kustomization leaves out.
func readVariant(t *testing.T, dir string) variant {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.UnmarshalStrict(b, &k); err != nil {
		t.Fatalf("%s/kustomization.yaml: %v", dir, err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("%s/kustomization.yaml is a %s %s", dir, k.APIVersion, k.Kind)
	}
	for _, img := range k.Images {
		if img.Name != imageRepository {
			t.Errorf("%s/kustomization.yaml sets the image %s, not %s", dir, img.Name, imageRepository)
		}
	}
	examples, err := filepath.Glob(filepath.Join(dir, "*.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	all, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range all {
		base := filepath.Base(f)
		if base != "kustomization.yaml" && !slices.Contains(examples, f) && !slices.Contains(k.Resources, base) {
			t.Errorf("%s is not among the resources of %s/kustomization.yaml", f, dir)
		}
	}

	v := variant{dir: dir}
	dec := decoder(t)
	files := slices.Clone(examples)
	for _, r := range k.Resources {
		files = append(files, filepath.Join(dir, r))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		obj, gvk, err := dec.Decode(b, nil, nil)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		switch o := obj.(type) {
		case *appsv1.Deployment:
			if v.deployment != nil {
				t.Errorf("%s: a second Deployment", f)
			}
			v.deployment = o
		case *corev1.Service:
			v.services = append(v.services, o)
		case *corev1.PersistentVolumeClaim:
			v.claims = append(v.claims, o)
		case *corev1.Secret:
			v.secrets = append(v.secrets, o)
		case *policyv1.PodDisruptionBudget:
			v.budgets = append(v.budgets, o)
		default:
			t.Errorf("%s: a %v, which the tests do not check", f, gvk)
		}
	}
	if v.deployment == nil {
		t.Fatalf("%s has no Deployment", dir)
	}
	return v
}

// TestKubernetesStrict checks that the decoder refuses a field the API does
// not have, so that the manifests' decoding proves something.
func TestKubernetesStrict(t *testing.T) {
	bad := []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  replica: 1\n")
	if _, _, err := decoder(t).Decode(bad, nil, nil); err == nil {
		t.Fatal("a Deployment with spec.replica decodes without an error")
	}
}

// container returns the Deployment's imagebadger container.
func container(t *testing.T, v variant) corev1.Container {
	t.Helper()
	for _, c := range v.deployment.Spec.Template.Spec.Containers {
		if strings.HasPrefix(c.Image, imageRepository+":") || strings.HasPrefix(c.Image, imageRepository+"@") {
			return c
		}
	}
	t.Fatalf("%s: no container runs %s", v.dir, imageRepository)
	return corev1.Container{}
}

// effective is a container's security context with the pod's filled in
// where the container sets nothing, as the kubelet applies them.
type effective struct {
	runAsNonRoot             *bool
	runAsUser, runAsGroup    *int64
	readOnlyRootFilesystem   *bool
	allowPrivilegeEscalation *bool
	capabilities             *corev1.Capabilities
	seccomp                  *corev1.SeccompProfile
}

func securityOf(pod *corev1.PodSecurityContext, c *corev1.SecurityContext) effective {
	var e effective
	if pod != nil {
		e.runAsNonRoot, e.runAsUser, e.runAsGroup, e.seccomp = pod.RunAsNonRoot, pod.RunAsUser, pod.RunAsGroup, pod.SeccompProfile
	}
	if c != nil {
		if c.RunAsNonRoot != nil {
			e.runAsNonRoot = c.RunAsNonRoot
		}
		if c.RunAsUser != nil {
			e.runAsUser = c.RunAsUser
		}
		if c.RunAsGroup != nil {
			e.runAsGroup = c.RunAsGroup
		}
		if c.SeccompProfile != nil {
			e.seccomp = c.SeccompProfile
		}
		e.readOnlyRootFilesystem, e.allowPrivilegeEscalation, e.capabilities = c.ReadOnlyRootFilesystem, c.AllowPrivilegeEscalation, c.Capabilities
	}
	return e
}

func is[T comparable](p *T, want T) bool { return p != nil && *p == want }

// TestKubernetesPods checks, in each variant, what the API types accept but a
// safe and working pod needs: the image's non-root user with no way to gain
// privileges, a read-only root file system with an emptyDir for /tmp, probes
// on /healthz (liveness) and /readyz (readiness) at the port the image
// listens on, resource requests within limits, and no service links, whose
// variables would share the IMAGEBADGER_ prefix of the binary's settings.
func TestKubernetesPods(t *testing.T) {
	for _, dir := range []string{kubernetesSQLite, kubernetesPostgres} {
		t.Run(path.Base(dir), func(t *testing.T) {
			v := readVariant(t, dir)
			pod := v.deployment.Spec.Template.Spec
			c := container(t, v)

			sel, err := metav1.LabelSelectorAsSelector(v.deployment.Spec.Selector)
			if err != nil || sel.Empty() || !sel.Matches(labels.Set(v.deployment.Spec.Template.Labels)) {
				t.Errorf("the Deployment's selector %v does not select its pods %v (%v)", v.deployment.Spec.Selector, v.deployment.Spec.Template.Labels, err)
			}
			if !is(pod.EnableServiceLinks, false) {
				t.Error("enableServiceLinks is not false")
			}
			if !is(pod.AutomountServiceAccountToken, false) {
				t.Error("automountServiceAccountToken is not false: the service never calls the Kubernetes API")
			}
			if len(c.Command) > 0 {
				t.Errorf("command %v replaces the image's entrypoint", c.Command)
			}
			if len(c.Args) == 0 || c.Args[0] != "serve" {
				t.Errorf("args %v do not run serve", c.Args)
			}

			sc := securityOf(pod.SecurityContext, c.SecurityContext)
			if !is(sc.runAsNonRoot, true) {
				t.Error("runAsNonRoot is not true")
			}
			if !is(sc.runAsUser, 65532) || !is(sc.runAsGroup, 65532) {
				t.Errorf("runs as %v:%v, not the image's 65532:65532", deref(sc.runAsUser), deref(sc.runAsGroup))
			}
			if !is(sc.readOnlyRootFilesystem, true) {
				t.Error("readOnlyRootFilesystem is not true")
			}
			if !is(sc.allowPrivilegeEscalation, false) {
				t.Error("allowPrivilegeEscalation is not false")
			}
			if sc.capabilities == nil || !slices.Contains(sc.capabilities.Drop, "ALL") || len(sc.capabilities.Add) > 0 {
				t.Errorf("capabilities %+v: want ALL dropped and none added", sc.capabilities)
			}
			if sc.seccomp == nil || sc.seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("seccomp profile %+v, want RuntimeDefault", sc.seccomp)
			}

			volumes := map[string]corev1.Volume{}
			for _, vol := range pod.Volumes {
				volumes[vol.Name] = vol
			}
			mounted := map[string]corev1.Volume{}
			for _, m := range c.VolumeMounts {
				vol, ok := volumes[m.Name]
				if !ok {
					t.Errorf("the mount at %s names no volume of the pod (%s)", m.MountPath, m.Name)
				}
				mounted[m.MountPath] = vol
			}
			if tmp, ok := mounted["/tmp"]; !ok || tmp.EmptyDir == nil {
				t.Errorf("/tmp is not an emptyDir: %+v", tmp)
			}

			ports := map[string]int32{}
			for _, p := range c.Ports {
				ports[p.Name] = p.ContainerPort
			}
			if !slices.Contains(slices.Collect(maps.Values(ports)), imagePort) {
				t.Errorf("container ports %v lack %d, where the image listens", ports, imagePort)
			}
			probe := func(kind string, p *corev1.Probe, wantPath string) {
				if p == nil || p.HTTPGet == nil {
					t.Errorf("no HTTP %s probe", kind)
					return
				}
				if p.HTTPGet.Path != wantPath {
					t.Errorf("the %s probe asks %s, want %s", kind, p.HTTPGet.Path, wantPath)
				}
				if port := portNumber(p.HTTPGet.Port, ports); port != imagePort {
					t.Errorf("the %s probe asks port %s, which is %d, not %d", kind, p.HTTPGet.Port.String(), port, imagePort)
				}
			}
			probe("liveness", c.LivenessProbe, "/healthz")
			probe("readiness", c.ReadinessProbe, "/readyz")
			if c.StartupProbe != nil {
				probe("startup", c.StartupProbe, "/healthz")
			}

			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, hasReq := c.Resources.Requests[r]
				lim, hasLim := c.Resources.Limits[r]
				if !hasReq || !hasLim {
					t.Errorf("%s: request %v, limit %v: want both", r, quantity(hasReq, req), quantity(hasLim, lim))
				} else if req.Cmp(lim) > 0 {
					t.Errorf("%s: the request %s exceeds the limit %s", r, req.String(), lim.String())
				}
			}

			for _, svc := range v.services {
				sel := labels.SelectorFromSet(svc.Spec.Selector)
				if sel.Empty() || !sel.Matches(labels.Set(v.deployment.Spec.Template.Labels)) {
					t.Errorf("Service %s selects %v, not the pods %v", svc.Name, svc.Spec.Selector, v.deployment.Spec.Template.Labels)
				}
				for _, p := range svc.Spec.Ports {
					if port := portNumber(p.TargetPort, ports); port != imagePort {
						t.Errorf("Service %s's port %d goes to %s, which is %d, not %d", svc.Name, p.Port, p.TargetPort.String(), port, imagePort)
					}
				}
			}
			if len(v.services) == 0 {
				t.Error("no Service")
			}
		})
	}
}

// TestKubernetesSQLite checks the SQLite variant: one pod at a time (SQLite
// allows one serving process, and Recreate stops the old pod before the new
// one opens the database), its database on a PersistentVolumeClaim of the
// same kustomization, mounted at /data.
func TestKubernetesSQLite(t *testing.T) {
	v := readVariant(t, kubernetesSQLite)
	d := v.deployment
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Errorf("replicas %v, want 1", deref(d.Spec.Replicas))
	}
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("strategy %q, want Recreate", d.Spec.Strategy.Type)
	}
	c := container(t, v)
	env := containerEnv(t, c)
	if _, ok := env["IMAGEBADGER_DB_FILE"]; ok {
		t.Error("the SQLite variant reads IMAGEBADGER_DB_FILE")
	}
	db := env["IMAGEBADGER_DB"]
	if db == "" {
		db = "/data/imagebadger.db" // the image's
	}
	vol := mountOf(t, v, c, db)
	if vol.PersistentVolumeClaim == nil {
		t.Fatalf("the database %s is not on a PersistentVolumeClaim: %+v", db, vol)
	}
	claimed := false
	for _, pvc := range v.claims {
		if pvc.Name == vol.PersistentVolumeClaim.ClaimName {
			claimed = true
			if !slices.Contains(pvc.Spec.AccessModes, corev1.ReadWriteOnce) && !slices.Contains(pvc.Spec.AccessModes, corev1.ReadWriteOncePod) {
				t.Errorf("PersistentVolumeClaim %s's access modes %v", pvc.Name, pvc.Spec.AccessModes)
			}
			if _, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; !ok {
				t.Errorf("PersistentVolumeClaim %s requests no storage", pvc.Name)
			}
		}
	}
	if !claimed {
		t.Errorf("the claim %s is not in %s", vol.PersistentVolumeClaim.ClaimName, kubernetesSQLite)
	}
	checkContainer(t, kubernetesSQLite, c)
}

// TestKubernetesPostgres checks the PostgreSQL variant: two or more pods,
// rolled one at a time, reading the database URL from a file of the Secret
// the example makes, with the image's SQLite path cleared, and a disruption
// budget that leaves one pod serving.
func TestKubernetesPostgres(t *testing.T) {
	v := readVariant(t, kubernetesPostgres)
	d := v.deployment
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Errorf("replicas %v, want 2 or more", deref(d.Spec.Replicas))
	}
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		t.Error("strategy Recreate stops every pod at each update")
	}
	c := container(t, v)
	env := containerEnv(t, c)
	if v, ok := env["IMAGEBADGER_DB"]; !ok || v != "" {
		t.Errorf("IMAGEBADGER_DB %q: the image's SQLite path must be cleared beside IMAGEBADGER_DB_FILE", v)
	}
	file, ok := env["IMAGEBADGER_DB_FILE"]
	if !ok {
		t.Fatal("no IMAGEBADGER_DB_FILE")
	}
	vol := mountOf(t, v, c, file)
	if vol.Secret == nil {
		t.Fatalf("%s is not on a Secret volume: %+v", file, vol)
	}
	key := path.Base(file)
	for _, item := range vol.Secret.Items {
		if item.Path == path.Base(file) {
			key = item.Key
		}
	}
	found := false
	for _, s := range v.secrets {
		if s.Name != vol.Secret.SecretName {
			continue
		}
		found = true
		_, inData := s.Data[key]
		_, inString := s.StringData[key]
		if !inData && !inString {
			t.Errorf("the Secret %s has no key %s, which the pods read as %s", s.Name, key, file)
		}
	}
	if !found {
		t.Errorf("no manifest in %s makes the Secret %s", kubernetesPostgres, vol.Secret.SecretName)
	}

	if len(v.budgets) == 0 {
		t.Error("no PodDisruptionBudget")
	}
	for _, b := range v.budgets {
		sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("PodDisruptionBudget %s does not select the pods (%v)", b.Name, err)
		}
		if b.Spec.MinAvailable == nil || b.Spec.MinAvailable.Type != intstr.Int || b.Spec.MinAvailable.IntValue() < 1 ||
			(d.Spec.Replicas != nil && int32(b.Spec.MinAvailable.IntValue()) >= *d.Spec.Replicas) {
			t.Errorf("PodDisruptionBudget %s: minAvailable %v, want at least one pod and fewer than the %v replicas", b.Name, b.Spec.MinAvailable, deref(d.Spec.Replicas))
		}
	}
	checkContainer(t, kubernetesPostgres, c)
}

// containerEnv returns a container's literal environment variables; one
// taken from elsewhere (valueFrom) fails the test, as the image's settings
// come in literal values or files.
func containerEnv(t *testing.T, c corev1.Container) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			t.Errorf("%s comes from %+v: secrets are read from files (the _FILE forms)", e.Name, e.ValueFrom)
		}
		env[e.Name] = e.Value
	}
	if len(c.EnvFrom) > 0 {
		t.Errorf("envFrom %+v: the variables are not listed", c.EnvFrom)
	}
	return env
}

// mountOf returns the volume the container sees file in.
func mountOf(t *testing.T, v variant, c corev1.Container, file string) corev1.Volume {
	t.Helper()
	best := ""
	var name string
	for _, m := range c.VolumeMounts {
		if strings.HasPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/") && len(m.MountPath) > len(best) {
			best, name = m.MountPath, m.Name
		}
	}
	for _, vol := range v.deployment.Spec.Template.Spec.Volumes {
		if best != "" && vol.Name == name {
			return vol
		}
	}
	t.Fatalf("%s: %s is on no volume (it would be on the read-only root file system)", v.dir, file)
	return corev1.Volume{}
}

// checkContainer runs the container's arguments with its environment through
// the binary.
func checkContainer(t *testing.T, where string, c corev1.Container) {
	t.Helper()
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	checkCommandLine(t, where, c.Args, env)
}

// portNumber resolves a port given by number or by a container port's name.
func portNumber(p intstr.IntOrString, named map[string]int32) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	return named[p.StrVal]
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func quantity(ok bool, q resource.Quantity) string {
	if !ok {
		return "none"
	}
	return q.String()
}
