//! Zone file parser.
