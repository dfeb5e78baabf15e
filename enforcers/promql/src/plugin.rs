//! The gateway's view of the enforcer: the `Enforcer` trait and the `promql` factory.

use std::sync::Arc;

use portcullis_api::{
    BuildError, EnforceError, Enforcer, EnforcerFactory, ExpressionKind, Language, PluginContext,
    Section, Target, TenantSet,
};

use crate::{EnforcerConfig, PromqlEnforcer};

// === impl PromqlEnforcer ===

impl Enforcer for PromqlEnforcer {
    /// Rewrites every expression of `target`: a [`ExpressionKind::Query`] as a whole query (a
    /// missing one is the empty query, which does not parse), a [`ExpressionKind::Selector`] as a
    /// series selector. Either every expression is rewritten or, on the first error, none is.
    fn enforce(&self, target: &mut Target<'_>, allowed: &TenantSet) -> Result<(), EnforceError> {
        if !self.supports(target.language) {
            return Err(EnforceError::Unsupported(format!(
                "the promql enforcer cannot enforce {:?} expressions",
                target.language
            )));
        }

        let mut rewritten = Vec::with_capacity(target.expressions.len());
        let mut selectors = 0;
        for expression in target.expressions.iter() {
            let text = expression.text.as_deref();
            let enforced = match expression.kind {
                ExpressionKind::Query => {
                    let enforced = self.enforce_query_counted(text.unwrap_or_default(), allowed)?;
                    selectors += enforced.selectors;
                    enforced.text
                }
                ExpressionKind::Selector => {
                    selectors += 1;
                    self.enforce_selector(text, allowed)?
                }
                kind => {
                    return Err(EnforceError::Unsupported(format!(
                        "the promql enforcer cannot enforce {kind:?} expressions"
                    )));
                }
            };
            rewritten.push(enforced);
        }

        for (expression, text) in target.expressions.iter_mut().zip(rewritten) {
            expression.text = Some(text);
        }
        target.selectors_rewritten += selectors;
        Ok(())
    }

    fn supports(&self, language: Language) -> bool {
        language == Language::PromQl
    }

    fn label(&self) -> Option<&str> {
        Some(&self.config().label)
    }
}

/// Builds [`PromqlEnforcer`]s from configuration sections of `type = "promql"`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PromqlEnforcerFactory;

impl EnforcerFactory for PromqlEnforcerFactory {
    fn type_name(&self) -> &'static str {
        "promql"
    }

    fn build(
        &self,
        section: &Section,
        _context: &PluginContext,
    ) -> Result<Arc<dyn Enforcer>, BuildError> {
        let config: EnforcerConfig = section.parse()?;
        let enforcer =
            PromqlEnforcer::new(config).map_err(|err| section.error(err.key(), err.to_string()))?;
        Ok(Arc::new(enforcer))
    }
}

#[cfg(test)]
mod tests {
    use portcullis_api::{Expression, HeaderEdits};

    use super::*;

    fn section(text: &str) -> Section {
        Section::new("enforcers.tenant", toml::from_str(text).unwrap())
    }

    fn build(text: &str) -> Result<Arc<dyn Enforcer>, BuildError> {
        PromqlEnforcerFactory.build(&section(text), &PluginContext::default())
    }

    fn acme() -> TenantSet {
        TenantSet::single("acme").unwrap()
    }

    #[test]
    fn the_factory_builds_from_its_section() {
        assert_eq!(PromqlEnforcerFactory.type_name(), "promql");
        let enforcer = build("label = 'namespace'").unwrap();
        assert!(enforcer.supports(Language::PromQl));
        assert!(!enforcer.supports(Language::LogQl));
    }

    #[test]
    fn build_errors_name_the_key() {
        let err = build("label = 'namespace'\nmax_depth = 0").err().unwrap();
        assert_eq!(
            err.to_string(),
            "enforcers.tenant.max_depth: must be at least 1"
        );
        let err = build("label = 'namespace'\nstrict = true").err().unwrap();
        assert!(err.to_string().contains("unknown field `strict`"), "{err}");
        let err = build("label = '__name__'").err().unwrap();
        assert_eq!(err.path, "enforcers.tenant.label");
    }

    #[test]
    fn every_expression_is_rewritten_by_its_kind() {
        let enforcer = build("label = 'namespace'").unwrap();
        let mut expressions = [
            Expression::new(ExpressionKind::Query, Some("up".into())),
            Expression::new(ExpressionKind::Selector, Some("up".into())),
            Expression::new(ExpressionKind::Selector, None),
        ];
        let mut headers = HeaderEdits::default();
        let mut target = Target::new(Language::PromQl, &mut expressions, &mut headers);
        enforcer.enforce(&mut target, &acme()).unwrap();

        let texts: Vec<_> = expressions.iter().map(|e| e.text.as_deref()).collect();
        assert_eq!(
            texts,
            [
                Some(r#"up{namespace="acme"}"#),
                Some(r#"{__name__="up",namespace="acme"}"#),
                Some(r#"{namespace="acme"}"#),
            ]
        );
        assert_eq!(headers.iter().count(), 0);
    }

    #[test]
    fn one_bad_expression_leaves_all_untouched() {
        let enforcer = build("label = 'namespace'").unwrap();
        let mut expressions = [
            Expression::new(ExpressionKind::Query, Some("up".into())),
            Expression::new(ExpressionKind::Query, Some("up +".into())),
        ];
        let mut headers = HeaderEdits::default();
        let mut target = Target::new(Language::PromQl, &mut expressions, &mut headers);
        let err = enforcer.enforce(&mut target, &acme()).unwrap_err();
        assert!(matches!(err, EnforceError::Invalid(_)), "{err:?}");
        assert_eq!(expressions[0].text.as_deref(), Some("up"));
    }

    #[test]
    fn a_missing_query_is_a_parse_error() {
        let enforcer = build("label = 'namespace'").unwrap();
        let mut expressions = [Expression::new(ExpressionKind::Query, None)];
        let mut headers = HeaderEdits::default();
        let mut target = Target::new(Language::PromQl, &mut expressions, &mut headers);
        assert_eq!(
            enforcer.enforce(&mut target, &acme()),
            Err(EnforceError::Invalid(
                "parse error: no expression found in input".into()
            ))
        );
    }

    #[test]
    fn other_languages_are_a_configuration_error() {
        let enforcer = build("label = 'namespace'").unwrap();
        let mut expressions = [Expression::new(
            ExpressionKind::Query,
            Some("{a=\"b\"}".into()),
        )];
        let mut headers = HeaderEdits::default();
        let mut target = Target::new(Language::LogQl, &mut expressions, &mut headers);
        let err = enforcer.enforce(&mut target, &acme()).unwrap_err();
        assert!(matches!(err, EnforceError::Unsupported(_)), "{err:?}");
    }
}
