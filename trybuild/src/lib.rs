//! Compile cases of munggoggo's macros live in fail/ and pass/.
