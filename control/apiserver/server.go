package apiserver

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/admission/plugin/namespace/lifecycle"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	serverstorage "k8s.io/apiserver/pkg/server/storage"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"

	"github.com/barge-dev/barge/control/openapi"
	"github.com/barge-dev/barge/control/registry"
	"github.com/barge-dev/barge/control/scheme"
	"github.com/barge-dev/barge/raftstore/pki"
)

// Server is one running-ready API server.
type Server struct {
	cfg       Config
	generic   *genericapiserver.GenericAPIServer
	informers informers.SharedInformerFactory
	addr      string
	loopback  *restclient.Config
}

// New builds an API server; Run serves it.
func New(cfg Config) (*Server, error) {
	if err := cfg.complete(); err != nil {
		return nil, err
	}
	sch, codecs, err := scheme.New()
	if err != nil {
		return nil, err
	}
	gc := genericapiserver.NewRecommendedConfig(codecs)
	gc.EffectiveVersion = newReportedVersion(cfg.BargeVersion)

	ln := cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return nil, fmt.Errorf("apiserver: listen: %w", err)
		}
	}
	if err := applyServing(gc, cfg, ln); err != nil {
		ln.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, addr: ln.Addr().String(), loopback: gc.LoopbackClientConfig}
	client, err := kubernetes.NewForConfig(gc.LoopbackClientConfig)
	if err != nil {
		return nil, fmt.Errorf("apiserver: loopback client: %w", err)
	}
	s.informers = informers.NewSharedInformerFactory(client, 0)
	gc.SharedInformerFactory = s.informers

	sec, err := newSecurity(cfg, gc, client, s.informers)
	if err != nil {
		return nil, err
	}
	if err := applyStorage(gc, cfg, sch, codecs); err != nil {
		return nil, err
	}
	if err := applyAdmission(gc, client, s.informers); err != nil {
		return nil, err
	}
	namer := openapinamer.NewDefinitionNamer(sch)
	gc.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(openapi.GetOpenAPIDefinitions, namer)
	gc.OpenAPIConfig.Info.Title = "Kubernetes"
	gc.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(openapi.GetOpenAPIDefinitions, namer)
	gc.OpenAPIV3Config.Info.Title = "Kubernetes"
	// Request bodies are capped at the store's own request limit, so an
	// object that passes here also fits in one store write and a too-large
	// one gets a 413 naming the limit rather than a store error.
	gc.MaxRequestBodyBytes = MaxRequestBytes

	generic, err := gc.Complete().New("barge-apiserver", genericapiserver.NewEmptyDelegate())
	if err != nil {
		return nil, fmt.Errorf("apiserver: %w", err)
	}
	reg, err := registry.New(registry.Options{
		Scheme:         sch,
		Codecs:         codecs,
		ParameterCodec: runtime.NewParameterCodec(sch),
		RESTOptions:    gc.RESTOptionsGetter,
		Authorizer:     gc.Authorization.Authorizer,
		RuleResolver:   sec.rules,
		Tokens:         sec.tokens,
		TokenAudiences: gc.Authentication.APIAudiences,
		ServiceCIDR:    cfg.ServiceCIDR,
		NodePorts:      cfg.NodePortRange,
	})
	if err != nil {
		return nil, err
	}
	if err := generic.InstallLegacyAPIGroup(genericapiserver.DefaultLegacyAPIPrefix, reg.Groups[0]); err != nil {
		return nil, fmt.Errorf("apiserver: install core API: %w", err)
	}
	if err := generic.InstallAPIGroups(reg.Groups[1:]...); err != nil {
		return nil, fmt.Errorf("apiserver: install API groups: %w", err)
	}
	installCRDList(generic)
	if err := s.addHooks(generic, client); err != nil {
		return nil, err
	}
	s.generic = generic
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.addr }

// LoopbackConfig is a privileged client configuration for this server.
func (s *Server) LoopbackConfig() *restclient.Config { return restclient.CopyConfig(s.loopback) }

// Run serves until ctx ends, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	return s.generic.PrepareRun().RunWithContext(ctx)
}

func applyServing(gc *genericapiserver.RecommendedConfig, cfg Config, ln net.Listener) error {
	_, portStr, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		return fmt.Errorf("apiserver: %w", err)
	}
	port, _ := strconv.Atoi(portStr)
	serving := genericoptions.NewSecureServingOptions().WithLoopback()
	serving.Listener = ln
	serving.BindPort = port
	serving.ServerCert.CertKey.CertFile = filepath.Join(cfg.CertsDir, pki.ServerCertFile)
	serving.ServerCert.CertKey.KeyFile = filepath.Join(cfg.CertsDir, pki.ServerKeyFile)
	serving.ServerCert.CertDirectory = ""
	if err := serving.ApplyTo(&gc.SecureServing, &gc.LoopbackClientConfig); err != nil {
		return fmt.Errorf("apiserver: serving: %w", err)
	}
	return nil
}

// applyStorage points every resource at the store under /registry, with
// the watch cache in front so each resource holds one store watch no
// matter how many clients watch it.
func applyStorage(gc *genericapiserver.RecommendedConfig, cfg Config, sch *runtime.Scheme, codecs serializer.CodecFactory) error {
	backend := storagebackend.NewDefaultConfig("/registry", nil)
	backend.Transport = storagebackend.TransportConfig{
		ServerList:    cfg.StoreEndpoints,
		CertFile:      filepath.Join(cfg.CertsDir, pki.ServerCertFile),
		KeyFile:       filepath.Join(cfg.CertsDir, pki.ServerKeyFile),
		TrustedCAFile: filepath.Join(cfg.CertsDir, pki.CACertFile),
	}
	// The store compacts itself (raftstore's auto-compaction); a second
	// compactor here would only race it.
	backend.CompactionInterval = 0
	etcd := genericoptions.NewEtcdOptions(backend)
	etcd.EnableWatchCache = true
	etcd.DefaultStorageMediaType = runtime.ContentTypeProtobuf
	resources := serverstorage.NewResourceConfig()
	resources.EnableVersions(scheme.GroupVersions...)
	factory := serverstorage.NewDefaultStorageFactory(*backend, runtime.ContentTypeProtobuf, codecs,
		serverstorage.NewDefaultResourceEncodingConfig(sch), resources, nil)
	if err := etcd.ApplyWithStorageFactoryTo(factory, &gc.Config); err != nil {
		return fmt.Errorf("apiserver: storage: %w", err)
	}
	return nil
}

// applyAdmission installs namespace lifecycle admission (objects cannot
// be created in a namespace that does not exist or is terminating) and
// the pod defaults Kubernetes' admission plugins add.
func applyAdmission(gc *genericapiserver.RecommendedConfig, client kubernetes.Interface, inf informers.SharedInformerFactory) error {
	nsLifecycle, err := lifecycle.NewLifecycle(sets.New("default", "kube-system", "kube-public"))
	if err != nil {
		return fmt.Errorf("apiserver: admission: %w", err)
	}
	nsLifecycle.SetExternalKubeClientSet(client)
	nsLifecycle.SetExternalKubeInformerFactory(inf)
	if err := nsLifecycle.ValidateInitialization(); err != nil {
		return fmt.Errorf("apiserver: admission: %w", err)
	}
	gc.AdmissionControl = admission.NewChainHandler(nsLifecycle, newPodDefaults())
	return nil
}
