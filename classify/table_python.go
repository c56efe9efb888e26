package classify

// Exception types, by the last part of their dotted name, mapped to the class their
// type alone implies. A traceback's final line is matched against this table only at
// its start ("torch.OutOfMemoryError: ..."), so a name inside a message does not count.
// The message's own literals (a CUDA error text, an errno) are weighed first; these
// names decide when the message names nothing. Unknown marks a type that is a crash
// of the program itself (KeyError, AssertionError): the log is then unknown with that
// exception as evidence, never none.
//
// Sources, each entry's origin: CPython 3.12 Doc/library/exceptions.rst (the built-in
// hierarchy); PyTorch 2.4 torch/_C (torch.OutOfMemoryError, torch.AcceleratorError),
// torch/distributed (DistBackendError, DistStoreError, DistNetworkError), elastic's
// ChildFailedError (torch/distributed/elastic/multiprocessing/errors, also in Debian's
// python3-torch 1.13.1); TensorFlow 2.15 tensorflow/python/framework/errors_impl.py;
// JAX jaxlib XlaRuntimeError; omegaconf 2.3 errors.py; hydra 1.3 errors.py; pydantic 2
// ValidationError; PyYAML 6 reader/scanner/parser/composer/constructor; huggingface_hub 0.23 utils/_errors.py;
// Lightning 2.x MisconfigurationException.
const (
	srcCPython = "CPython 3.12 Doc/library/exceptions.rst"
	srcTorchPy = "PyTorch 2.4 exception types (torch/_C, torch/distributed, elastic errors; Debian python3-torch 1.13.1)"
	srcTF      = "TensorFlow 2.15 errors_impl.py, training/basic_session_run_hooks.py; JAX jaxlib XlaRuntimeError"
	srcPyLibs  = "omegaconf 2.3, hydra 1.3, pydantic 2, PyYAML 6, huggingface_hub 0.23, Lightning 2.x exception types"
)

type excType struct {
	name   string
	class  Class
	tier   tier
	origin string
}

var exceptionTypes = []excType{
	// Built-in.
	{"MemoryError", HostOOM, root, srcCPython},
	{"ModuleNotFoundError", ImportError, root, srcCPython},
	{"ImportError", ImportError, root, srcCPython},
	{"FileNotFoundError", FileNotFound, root, srcCPython},
	{"NotADirectoryError", FileNotFound, root, srcCPython},
	{"IsADirectoryError", FileNotFound, root, srcCPython},
	{"PermissionError", Permission, root, srcCPython},
	{"TimeoutError", Timeout, root, srcCPython},
	{"FloatingPointError", NaNDivergence, root, srcCPython},
	// ValueError: "an argument that has the right type but an inappropriate value".
	{"ValueError", ConfigError, root, srcCPython},
	{"KeyError", Unknown, hint, srcCPython},
	{"IndexError", Unknown, hint, srcCPython},
	{"AttributeError", Unknown, hint, srcCPython},
	{"TypeError", Unknown, hint, srcCPython},
	{"NameError", Unknown, hint, srcCPython},
	{"UnboundLocalError", Unknown, hint, srcCPython},
	{"AssertionError", Unknown, hint, srcCPython},
	{"ZeroDivisionError", Unknown, hint, srcCPython},
	{"OverflowError", Unknown, hint, srcCPython},
	{"RecursionError", Unknown, hint, srcCPython},
	{"RuntimeError", Unknown, hint, srcCPython},
	{"NotImplementedError", Unknown, hint, srcCPython},
	{"StopIteration", Unknown, hint, srcCPython},
	{"OSError", Unknown, hint, srcCPython},
	{"IOError", Unknown, hint, srcCPython},
	{"EOFError", Unknown, hint, srcCPython},
	{"BrokenPipeError", Unknown, hint, srcCPython},
	{"ConnectionError", Unknown, hint, srcCPython},
	{"ConnectionResetError", Unknown, hint, srcCPython},
	{"ConnectionRefusedError", Unknown, hint, srcCPython},
	{"ConnectionAbortedError", Unknown, hint, srcCPython},
	{"ChildProcessError", Unknown, hint, srcCPython},
	{"UnicodeDecodeError", Unknown, hint, srcCPython},
	{"UnicodeEncodeError", Unknown, hint, srcCPython},
	{"SyntaxError", Unknown, hint, srcCPython},
	{"IndentationError", Unknown, hint, srcCPython},
	{"SystemError", Unknown, hint, srcCPython},
	{"SystemExit", Unknown, hint, srcCPython},
	{"KeyboardInterrupt", Unknown, hint, srcCPython},
	{"Exception", Unknown, hint, srcCPython},
	{"BaseExceptionGroup", Unknown, hint, srcCPython},
	{"ExceptionGroup", Unknown, hint, srcCPython},
	{"CalledProcessError", Unknown, hint, srcCPython},
	{"JSONDecodeError", ConfigError, root, srcCPython},
	{"BadZipFile", Unknown, hint, srcCPython},
	{"UnpicklingError", Unknown, hint, srcCPython},

	// PyTorch.
	{"OutOfMemoryError", CudaOOM, root, srcTorchPy},
	{"DistBackendError", NCCL, consequence, srcTorchPy},
	{"DistStoreError", NCCL, consequence, srcTorchPy},
	{"DistNetworkError", NCCL, consequence, srcTorchPy},
	{"DistError", NCCL, consequence, srcTorchPy},
	{"AcceleratorError", CUDAError, consequence, srcTorchPy},
	{"ChildFailedError", Unknown, hint, srcTorchPy},

	// TensorFlow and JAX.
	{"ResourceExhaustedError", CudaOOM, root, srcTF},
	{"NotFoundError", FileNotFound, root, srcTF},
	{"PermissionDeniedError", Permission, root, srcTF},
	{"DeadlineExceededError", Timeout, root, srcTF},
	// basic_session_run_hooks.py NanTensorHook raises it when the loss is NaN.
	{"NanLossDuringTrainingError", NaNDivergence, root, srcTF},
	{"InvalidArgumentError", Unknown, hint, srcTF},
	{"InternalError", Unknown, hint, srcTF},
	{"UnknownError", Unknown, hint, srcTF},
	{"FailedPreconditionError", Unknown, hint, srcTF},
	{"UnavailableError", Unknown, hint, srcTF},
	{"XlaRuntimeError", Unknown, hint, srcTF},

	// Configuration and hub libraries.
	{"ConfigAttributeError", ConfigError, root, srcPyLibs},
	{"ConfigKeyError", ConfigError, root, srcPyLibs},
	{"ConfigTypeError", ConfigError, root, srcPyLibs},
	{"MissingMandatoryValue", ConfigError, root, srcPyLibs},
	{"InterpolationResolutionError", ConfigError, root, srcPyLibs},
	{"ConfigCompositionException", ConfigError, root, srcPyLibs},
	{"MissingConfigException", ConfigError, root, srcPyLibs},
	{"InstantiationException", ConfigError, root, srcPyLibs},
	{"ValidationError", ConfigError, root, srcPyLibs},
	{"KeyValidationError", ConfigError, root, srcPyLibs},
	{"ReadonlyConfigError", ConfigError, root, srcPyLibs},
	{"ConfigIndexError", ConfigError, root, srcPyLibs},
	{"ConfigValueError", ConfigError, root, srcPyLibs},
	{"InterpolationKeyError", ConfigError, root, srcPyLibs},
	{"InterpolationToMissingValueError", ConfigError, root, srcPyLibs},
	{"InterpolationValidationError", ConfigError, root, srcPyLibs},
	{"GrammarParseError", ConfigError, root, srcPyLibs},
	{"OverrideParseException", ConfigError, root, srcPyLibs},
	// PyYAML's yaml.reader, scanner, parser, composer and constructor errors: the
	// YAML text (a config file, as a rule) is malformed.
	{"ReaderError", ConfigError, root, srcPyLibs},
	{"ScannerError", ConfigError, root, srcPyLibs},
	{"ComposerError", ConfigError, root, srcPyLibs},
	{"ParserError", ConfigError, root, srcPyLibs},
	{"ConstructorError", ConfigError, root, srcPyLibs},
	{"HFValidationError", ConfigError, root, srcPyLibs},
	{"MisconfigurationException", ConfigError, root, srcPyLibs},
	{"RepositoryNotFoundError", FileNotFound, root, srcPyLibs},
	{"RevisionNotFoundError", FileNotFound, root, srcPyLibs},
	{"EntryNotFoundError", FileNotFound, root, srcPyLibs},
	{"LocalEntryNotFoundError", FileNotFound, root, srcPyLibs},
	{"GatedRepoError", Permission, root, srcPyLibs},
}
