// Package setting words errors about settings so that each front end can
// name the settings its own way. A package names a setting by its key: a
// configuration key such as `cert`, or an Options field such as `CertFile`.
// Its user knows the setting by another name: --cert on the command line,
// SECLISTEN_CERT in the environment, cert at a line of a configuration
// file. An Error keeps the keys apart from the sentence, and Render puts
// each one back as the reader knows it.
package setting
