// Package reports turns published driver and work-queue bug reports into
// scenarios: each one is the reported race, translated to its NT analogue
// on the simulated kernel and work queues, with the buggy code as its bug
// variant and the merged fix as its correct variant. Every scenario cites
// the report (repository and pull request or issue) in its doc; the facts
// come from the report, the code is ours.
//
// Importing the package registers its scenarios (model.Register); the
// wqsim command imports it, model does not.
//
// Layering: reports is in the model layer; it imports model, queues,
// kernel and des.
package reports
