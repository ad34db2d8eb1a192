// repave-lab-csi: the lab's CSI node plugin. It registers with the kubelet as driver.longhorn.io
// and serves each volume as a directory, <data-dir>/<volumeHandle>: NodePublishVolume bind-mounts
// it onto the kubelet's target path, NodeUnpublishVolume unmounts it. So a pod's claim really holds
// bytes, and after the pod is gone the directory still holds them (a retained PV keeps its data).
//
// Longhorn's controller side (provisioning, attaching, the volumes.longhorn.io objects) is played by
// the lab agent (Sources/repave-lab); this process is only the node half. It also speaks the kubelet's
// plugin-registration protocol (pluginregistration/v1, what node-driver-registrar does) on
// <kubelet-root>/plugins_registry/<driver>-reg.sock, so no sidecar is needed.
//
// scripts/lab-build-k8s.sh builds it inside the kubernetes v1.20.2 tree, in GOPATH mode, against the
// tree's vendor/ (CSI spec 1.x, grpc, pluginregistration/v1): nothing is downloaded.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

var (
	driver      = flag.String("driver", "driver.longhorn.io", "CSI driver name")
	nodeID      = flag.String("node-id", "lab-node-1", "node id reported by NodeGetInfo")
	dataDir     = flag.String("data-dir", "", "one directory per volume: <data-dir>/<volumeHandle>")
	csiSock     = flag.String("csi-socket", "", "CSI endpoint (unix socket path)")
	kubeletRoot = flag.String("kubelet-root", "", "kubelet --root-dir (registration socket goes to <root>/plugins_registry)")
	autoCreate  = flag.Bool("create-missing", true, "create <data-dir>/<volumeHandle> on publish if missing")
)

type server struct {
	csi.UnimplementedIdentityServer
	csi.UnimplementedNodeServer
}

// ---- Identity ----
func (s *server) GetPluginInfo(context.Context, *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	return &csi.GetPluginInfoResponse{Name: *driver, VendorVersion: "lab-0.1"}, nil
}
func (s *server) GetPluginCapabilities(context.Context, *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	return &csi.GetPluginCapabilitiesResponse{}, nil // node-only plugin: no CONTROLLER_SERVICE
}
func (s *server) Probe(context.Context, *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	return &csi.ProbeResponse{}, nil
}

// ---- Node ----
func (s *server) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{NodeId: *nodeID}, nil
}
func (s *server) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	return &csi.NodeGetCapabilitiesResponse{}, nil // no STAGE_UNSTAGE: kubelet calls NodePublish directly
}

func isMountPoint(p string) bool {
	var st, pst unix.Stat_t
	if unix.Lstat(p, &st) != nil || unix.Lstat(filepath.Dir(p), &pst) != nil {
		return false
	}
	if st.Dev != pst.Dev {
		return true
	}
	// same-filesystem bind mount: look it up in mountinfo
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	var id, parent, majmin, root, mp string
	for _, line := range splitLines(string(b)) {
		if n, _ := fmt.Sscan(line, &id, &parent, &majmin, &root, &mp); n == 5 && mp == p {
			return true
		}
	}
	return false
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

func (s *server) NodePublishVolume(ctx context.Context, r *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	vol, target := r.GetVolumeId(), r.GetTargetPath()
	if vol == "" || target == "" || filepath.Base(vol) != vol {
		return nil, status.Error(codes.InvalidArgument, "volume id and target path required; id must be a plain name")
	}
	src := filepath.Join(*dataDir, vol)
	if _, err := os.Stat(src); err != nil {
		if !os.IsNotExist(err) || !*autoCreate {
			return nil, status.Errorf(codes.NotFound, "volume %s: %v", vol, err)
		}
		if err := os.MkdirAll(src, 0o755); err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
	}
	if err := os.MkdirAll(target, 0o750); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if isMountPoint(target) {
		return &csi.NodePublishVolumeResponse{}, nil // idempotent
	}
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		return nil, status.Errorf(codes.Internal, "bind mount %s -> %s: %v", src, target, err)
	}
	// Read-only when the pod's volume says so (the kubelet's readonly) or when the PV asks for it
	// (the lab agent's `lab.repave/publish: read-only` knob, in the volume context: the kubelet
	// does not turn a PV's csi.readOnly into readonly here).
	readOnly := r.GetReadonly() || r.GetVolumeContext()["lab.repave/publish"] == "read-only"
	if readOnly {
		if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			unix.Unmount(target, 0)
			return nil, status.Errorf(codes.Internal, "remount ro %s: %v", target, err)
		}
	}
	log.Printf("published %s at %s (ro=%v)", src, target, readOnly)
	return &csi.NodePublishVolumeResponse{}, nil
}

func (s *server) NodeUnpublishVolume(ctx context.Context, r *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	target := r.GetTargetPath()
	if target == "" {
		return nil, status.Error(codes.InvalidArgument, "target path required")
	}
	if isMountPoint(target) {
		if err := unix.Unmount(target, 0); err != nil {
			return nil, status.Errorf(codes.Internal, "umount %s: %v", target, err)
		}
	}
	if err := os.Remove(target); err != nil && !os.IsNotExist(err) {
		return nil, status.Error(codes.Internal, err.Error())
	}
	log.Printf("unpublished %s at %s", r.GetVolumeId(), target)
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

// ---- kubelet plugin registration (the node-driver-registrar protocol) ----
type registrar struct{}

func (registrar) GetInfo(context.Context, *registerapi.InfoRequest) (*registerapi.PluginInfo, error) {
	return &registerapi.PluginInfo{Type: registerapi.CSIPlugin, Name: *driver, Endpoint: *csiSock,
		SupportedVersions: []string{"1.0.0"}}, nil
}
func (registrar) NotifyRegistrationStatus(ctx context.Context, st *registerapi.RegistrationStatus) (*registerapi.RegistrationStatusResponse, error) {
	log.Printf("kubelet registration status: registered=%v error=%q", st.PluginRegistered, st.Error)
	return &registerapi.RegistrationStatusResponse{}, nil
}

func listen(path string) net.Listener {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		log.Fatal(err)
	}
	os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		log.Fatal(err)
	}
	return l
}

func main() {
	flag.Parse()
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	if *dataDir == "" || *csiSock == "" || *kubeletRoot == "" {
		log.Fatal("-data-dir, -csi-socket and -kubelet-root are required (scripts/lab passes them)")
	}
	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		log.Fatal(err)
	}
	s := &server{}
	cs := grpc.NewServer()
	csi.RegisterIdentityServer(cs, s)
	csi.RegisterNodeServer(cs, s)
	go func() { log.Fatal(cs.Serve(listen(*csiSock))) }()

	regSock := filepath.Join(*kubeletRoot, "plugins_registry", *driver+"-reg.sock")
	rs := grpc.NewServer()
	registerapi.RegisterRegistrationServer(rs, registrar{})
	go func() { log.Fatal(rs.Serve(listen(regSock))) }()
	log.Printf("%s: CSI on %s, registration on %s, volumes in %s", *driver, *csiSock, regSock, *dataDir)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	rs.Stop()
	cs.Stop()
	os.Remove(regSock) // kubelet's plugin watcher sees the socket go away and deregisters the driver
	os.Remove(*csiSock)
}
