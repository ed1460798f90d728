# The manager image: one static binary (joinery) on distroless, as nonroot.
#
#   docker build --build-arg VERSION=v0.1.0 --build-arg REVISION=$(git rev-parse HEAD) \
#     -t ghcr.io/joinery-dev/joinery:v0.1.0 .
#
# The go build below is the one `make image-binary` runs locally (same flags),
# so its output can be checked byte for byte without Docker: the build is
# reproducible (-trimpath, no build ID, no VCS stamping, CGO off).
ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=dev
ARG REVISION=unknown
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath \
      -ldflags="-buildid= -s -w -X main.version=${VERSION} -X main.revision=${REVISION}" \
      -o /out/joinery ./cmd/joinery

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/joinery /joinery
USER 65532:65532
ENTRYPOINT ["/joinery"]
CMD ["manager"]
