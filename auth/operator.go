package auth

// OperatorName is the Person of Operator.
const OperatorName = "operator (command line)"

// Operator is the viewer of the command line (inspect, check-base, tags,
// diff): the operator reads with their own credentials, so they see every
// repository those open. It is named, rather than left to a zero Viewer,
// which is an anonymous visitor who sees no private image.
func Operator() Viewer { return Viewer{Person: OperatorName} }
