//! The memoized function: a plain closure or one that recurses through its memo.

use std::marker::PhantomData;

/// A function a [`Memo`](crate::Memo) can memoize.
///
/// Built by the builder from a closure: [`build`](crate::MemoBuilder::build)
/// wraps `Fn(Args) -> R` in [`Plain`], and
/// [`build_recursive`](crate::MemoBuilder::build_recursive) wraps
/// `Fn(&dyn Fn(Args) -> R, Args) -> R` in [`Recursive`].
pub trait MemoFn: Send + Sync {
    /// The argument type (a tuple for several arguments).
    type Args;
    /// The result type.
    type Output;

    /// Runs the function; `recurse` calls back into the memo.
    fn run(&self, recurse: &dyn Fn(Self::Args) -> Self::Output, args: Self::Args) -> Self::Output;
}

/// A plain closure `Fn(Args) -> R`.
pub struct Plain<F, Args, R> {
    f: F,
    _sig: PhantomData<fn(Args) -> R>,
}

impl<F, Args, R> Plain<F, Args, R> {
    pub(crate) fn new(f: F) -> Self {
        Plain {
            f,
            _sig: PhantomData,
        }
    }
}

impl<F, Args, R> MemoFn for Plain<F, Args, R>
where
    F: Fn(Args) -> R + Send + Sync,
{
    type Args = Args;
    type Output = R;

    #[inline]
    fn run(&self, _recurse: &dyn Fn(Args) -> R, args: Args) -> R {
        (self.f)(args)
    }
}

/// A closure that receives a handle to its own memo for recursive calls:
/// `Fn(&dyn Fn(Args) -> R, Args) -> R`.
pub struct Recursive<F, Args, R> {
    f: F,
    _sig: PhantomData<fn(Args) -> R>,
}

impl<F, Args, R> Recursive<F, Args, R> {
    pub(crate) fn new(f: F) -> Self {
        Recursive {
            f,
            _sig: PhantomData,
        }
    }
}

impl<F, Args, R> MemoFn for Recursive<F, Args, R>
where
    F: Fn(&dyn Fn(Args) -> R, Args) -> R + Send + Sync,
{
    type Args = Args;
    type Output = R;

    #[inline]
    fn run(&self, recurse: &dyn Fn(Args) -> R, args: Args) -> R {
        (self.f)(recurse, args)
    }
}
