package reverse

import (
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Real created_by strings, from docker (classic builder), podman/buildah and BuildKit images.
func TestInstruction(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		// podman / buildah (the test bed's samples)
		{"buildah copy", `/bin/sh -c #(nop) COPY file:1c50334e9f9c521b149e14dcf437ba243ea07248805fcdb6251aa82add19fa37 in /app/app.js `, `COPY file:1c50334e9f9c521b149e14dcf437ba243ea07248805fcdb6251aa82add19fa37 /app/app.js`},
		{"buildah entrypoint", `/bin/sh -c #(nop) ENTRYPOINT ["node", "/app/app.js"]`, `ENTRYPOINT ["node", "/app/app.js"]`},
		{"buildah env", `/bin/sh -c #(nop) ENV NODE_ENV=production PORT=8080`, `ENV NODE_ENV=production PORT=8080`},
		{"buildah expose", `/bin/sh -c #(nop) EXPOSE 8080`, `EXPOSE 8080`},
		{"buildah workdir", `/bin/sh -c #(nop) WORKDIR /app`, `WORKDIR /app`},
		{"buildah run", `/bin/sh -c apt-get update && apt-get install -y --no-install-recommends nodejs node-express && rm -rf /var/lib/apt/lists/*`,
			"RUN apt-get update && \\\n\tapt-get install -y --no-install-recommends nodejs node-express && \\\n\trm -rf /var/lib/apt/lists/*"},
		{"podman import", `/bin/sh -c #(nop) ADD file:d6ef9257c10bc6bfb955419664e08d85edc29e385b68565d36b762691e86d0aa in /`, `ADD file:d6ef9257c10bc6bfb955419664e08d85edc29e385b68565d36b762691e86d0aa /`},
		// docker classic builder
		{"docker add", `/bin/sh -c #(nop) ADD file:5d673d25da3a14ce1f6cf66e4c7fd4f4b85a3759a9d93efb3fd9ff852b5b56e4 in / `, `ADD file:5d673d25da3a14ce1f6cf66e4c7fd4f4b85a3759a9d93efb3fd9ff852b5b56e4 /`},
		{"docker cmd", `/bin/sh -c #(nop)  CMD ["bash"]`, `CMD ["bash"]`},
		{"docker cmd go-quoted", `/bin/sh -c #(nop)  CMD ["nginx" "-g" "daemon off;"]`, `CMD ["nginx", "-g", "daemon off;"]`},
		{"docker expose map", `/bin/sh -c #(nop)  EXPOSE map[80/tcp:{} 443/tcp:{}]`, `EXPOSE 80/tcp 443/tcp`},
		{"docker stopsignal", `/bin/sh -c #(nop)  STOPSIGNAL SIGQUIT`, `STOPSIGNAL SIGQUIT`},
		{"docker volume", `/bin/sh -c #(nop)  VOLUME [/var/lib/mysql]`, `VOLUME ["/var/lib/mysql"]`},
		{"docker copy dir", `/bin/sh -c #(nop) COPY dir:8f0b7bb7a9cc5e2d7eb1c5f7f98e5a3f0e8a2f3d0c9b1a7e6f5d4c3b2a190817 in /usr/share/nginx/html `, `COPY dir:8f0b7bb7a9cc5e2d7eb1c5f7f98e5a3f0e8a2f3d0c9b1a7e6f5d4c3b2a190817 /usr/share/nginx/html`},
		{"docker label", `/bin/sh -c #(nop)  LABEL maintainer=NGINX Docker Maintainers <docker-maint@nginx.com>`, `LABEL maintainer=NGINX Docker Maintainers <docker-maint@nginx.com>`},
		{"docker healthcheck", `/bin/sh -c #(nop)  HEALTHCHECK &{["CMD-SHELL" "curl -f http://localhost/ || exit 1"] "30s" "3s" "0s" '\x03'}`, `HEALTHCHECK --interval=30s --timeout=3s --retries=3 CMD curl -f http://localhost/ || exit 1`},
		{"docker run with args", `|1 NODE_VERSION=18 /bin/sh -c apt-get update && apt-get install -y curl`, "RUN apt-get update && \\\n\tapt-get install -y curl"},
		{"quoted && kept", `/bin/sh -c echo "a && b" && echo 'c && d'`, "RUN echo \"a && b\" && \\\n\techo 'c && d'"},
		// BuildKit
		{"buildkit run", `RUN /bin/sh -c apt-get update && apt-get install -y ca-certificates # buildkit`, "RUN apt-get update && \\\n\tapt-get install -y ca-certificates"},
		{"buildkit run args", `RUN |2 TARGETARCH=amd64 VERSION=1.2 /bin/sh -c echo $VERSION # buildkit`, `RUN echo $VERSION`},
		{"buildkit env", `ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`, `ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`},
		{"buildkit copy", `COPY /src/app.jar /app/app.jar # buildkit`, `COPY /src/app.jar /app/app.jar`},
		{"buildkit copy dot", `COPY . . # buildkit`, `COPY . .`},
		{"buildkit expose", `EXPOSE map[8080/tcp:{}]`, `EXPOSE 8080/tcp`},
		{"buildkit cmd", `CMD ["node" "server.js"]`, `CMD ["node", "server.js"]`},
		{"buildkit entrypoint", `ENTRYPOINT ["docker-entrypoint.sh"]`, `ENTRYPOINT ["docker-entrypoint.sh"]`},
		{"buildkit shell", `SHELL [/bin/bash -o pipefail -c]`, `SHELL ["/bin/bash", "-o", "pipefail", "-c"]`},
		{"buildkit healthcheck", `HEALTHCHECK &{["CMD-SHELL" "wget -qO- http://localhost:8080/ || exit 1"] "10s" "2s" "5s" "0s" '\x05'}`, `HEALTHCHECK --interval=10s --timeout=2s --start-period=5s --retries=5 CMD wget -qO- http://localhost:8080/ || exit 1`},
		{"buildkit healthcheck exec", `HEALTHCHECK &{["CMD" "/bin/check" "--fast"] "1m0s" "0s" "0s" "0s" '\x00'}`, `HEALTHCHECK --interval=1m0s CMD ["/bin/check", "--fast"]`},
		{"buildkit healthcheck none", `HEALTHCHECK &{["NONE"] "0s" "0s" "0s" "0s" '\x00'}`, `HEALTHCHECK NONE`},
		{"buildkit user", `USER node`, `USER node`},
		{"buildkit arg", `ARG TARGETARCH`, `ARG TARGETARCH`},
		{"buildkit heredoc", "RUN /bin/sh -c set -e\necho one\necho two # buildkit", "RUN set -e \\\necho one \\\necho two"},
		{"empty", ``, ``},
		{"spaces", `   `, ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Instruction(tc.in); got != tc.want {
				t.Fatalf("Instruction(%q)\n got: %q\nwant: %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestDockerfile(t *testing.T) {
	history := []v1.History{
		{CreatedBy: `/bin/sh -c #(nop) ADD file:d6ef9257c10bc6bfb955419664e08d85edc29e385b68565d36b762691e86d0aa in /`, Comment: "imported from tarball"},
		{CreatedBy: `/bin/sh -c apt-get update && apt-get install -y python3`, Comment: "FROM localhost/slimoci/base:latest"},
		{CreatedBy: `/bin/sh -c #(nop) ENV A=1`, Comment: "FROM 4ab8c199804e", EmptyLayer: true},
		{CreatedBy: `ARG VERSION=1.2`, EmptyLayer: true},
		{CreatedBy: `RUN |2 TARGETARCH=amd64 VERSION=1.2 /bin/sh -c echo $VERSION # buildkit`},
		{CreatedBy: `RUN |2 TARGETARCH=amd64 VERSION=1.3 /bin/sh -c echo $VERSION # buildkit`},
		{Comment: "merged by some tool"},
		{EmptyLayer: true},
	}
	want := `FROM scratch
ADD file:d6ef9257c10bc6bfb955419664e08d85edc29e385b68565d36b762691e86d0aa /
# FROM localhost/slimoci/base:latest (named in the history's comment)
RUN apt-get update && \
	apt-get install -y python3
ENV A=1
ARG VERSION=1.2
ARG TARGETARCH=amd64
RUN echo $VERSION
ARG VERSION=1.3
RUN echo $VERSION
# layer 6: no command recorded (comment: "merged by some tool")
# history entry 7: no command recorded
`
	if got := Dockerfile(history); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	if !strings.HasPrefix(Dockerfile(nil), "FROM scratch") {
		t.Fatal("an image without history still gets FROM scratch")
	}
}
