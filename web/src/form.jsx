// A connector's config form, generated from its spec by react-jsonschema-form.
//
// Two things are ours. The validator: rjsf's own (ajv) compiles schemas to
// code with `new Function`, which the daemon's Content-Security-Policy
// forbids, so schemas are interpreted by @cfworker/json-schema instead.
// And Airbyte's keywords: `airbyte_secret` fields are password inputs, and
// `order` orders fields.

// From its files, not its index: the index also exports a test registry
// that imports ajv, which this bundle must not hold.
import Form from '@rjsf/core/lib/components/Form.js';
import getDefaultRegistry from '@rjsf/core/lib/getDefaultRegistry.js';
import { toErrorSchema } from '@rjsf/utils';
import { Validator } from '@cfworker/json-schema';

/** What the API answers in place of a stored secret. */
export const MASK = '**********';

const draft = (schema) =>
  /draft-04/.test(schema.$schema || '') ? '4' : /2019-09/.test(schema.$schema || '') ? '2019-09' : /2020-12/.test(schema.$schema || '') ? '2020-12' : '7';

const compiled = new WeakMap();

function validatorFor(schema, rootSchema) {
  const key = schema;
  let v = compiled.get(key);
  if (!v) {
    const full = { ...schema };
    for (const defs of ['definitions', '$defs']) {
      if (rootSchema && rootSchema[defs] && !full[defs]) full[defs] = rootSchema[defs];
    }
    v = new Validator(full, draft(rootSchema || schema), false);
    compiled.set(key, v);
  }
  return v;
}

// Keywords that only wrap the errors of what is inside them.
const WRAPPERS = new Set(['properties', 'items', 'allOf', '$ref', 'additionalProperties', 'prefixItems', 'dependentSchemas']);

function toRjsfErrors(errors) {
  return errors
    .filter((e) => !WRAPPERS.has(e.keyword))
    .map((e) => {
      let path = e.instanceLocation.replace(/^#/, '').split('/').filter(Boolean).map(decodeURIComponent);
      let message = e.error;
      if (e.keyword === 'required') {
        const missing = /"([^"]+)"/.exec(e.error);
        if (missing) path = [...path, missing[1]];
        message = 'is required';
      }
      const property = path.map((p) => `.${p}`).join('');
      return { name: e.keyword, property, message, params: {}, stack: `${property || 'config'} ${message}`, schemaPath: e.keywordLocation };
    });
}

/** rjsf's validator interface over @cfworker/json-schema. */
export const validator = {
  validateFormData(formData, schema, customValidate, transformErrors, uiSchema) {
    let errors = toRjsfErrors(validatorFor(schema, schema).validate(formData ?? {}).errors);
    // Secrets shown masked are kept as stored: their mask is not checked.
    errors = errors.filter((e) => !(e.name !== 'required' && valueAt(formData, e.property) === MASK));
    if (transformErrors) errors = transformErrors(errors, uiSchema);
    return { errors, errorSchema: toErrorSchema(errors) };
  },
  isValid(schema, formData, rootSchema) {
    try {
      return validatorFor(schema, rootSchema).validate(formData === undefined ? null : formData).valid;
    } catch {
      return false;
    }
  },
  rawValidation(schema, formData) {
    return { errors: validatorFor(schema, schema).validate(formData).errors };
  },
};

function valueAt(data, property) {
  return property.split('.').filter(Boolean).reduce((v, k) => (v == null ? v : v[k]), data);
}

/** `order` as rjsf's `ui:order`, for every object in the spec. */
export function uiSchemaOf(schema) {
  const ui = {};
  if (!schema || typeof schema !== 'object') return ui;
  const props = schema.properties || {};
  const names = Object.keys(props);
  if (names.some((n) => props[n] && props[n].order !== undefined)) {
    const rank = (n) => (props[n].order === undefined ? Infinity : props[n].order);
    ui['ui:order'] = [...names].sort((a, b) => rank(a) - rank(b)).concat('*');
  }
  for (const n of names) {
    const child = { ...uiSchemaOf(props[n]), ...uiSchemaOf(props[n].items) };
    // The options of a `oneOf` share the field's uiSchema.
    for (const option of props[n].oneOf || props[n].anyOf || []) Object.assign(child, uiSchemaOf(option));
    if (props[n].multiline) child['ui:widget'] = 'textarea';
    if (props[n].airbyte_secret) child['ui:widget'] = 'password';
    if (Object.keys(child).length) ui[n] = child;
  }
  return ui;
}

const { widgets } = getDefaultRegistry();

/** Any text field the spec marks `airbyte_secret` is a password input. */
function SecretAwareText(props) {
  if (props.schema && props.schema.airbyte_secret) {
    return <widgets.PasswordWidget {...props} />;
  }
  return <widgets.TextWidget {...props} />;
}

function SecretAwareTextarea(props) {
  if (props.schema && props.schema.airbyte_secret) {
    return <widgets.PasswordWidget {...props} />;
  }
  return <widgets.TextareaWidget {...props} />;
}

/** The password input, with autocomplete off (a config, not a login). */
function Password(props) {
  return <widgets.PasswordWidget {...props} options={{ ...props.options, autocomplete: 'new-password' }} />;
}

/**
 * The data without the keys of a string spread into an object ({"0": "p",
 * "1": "r", ...}): rjsf merges a `oneOf` field's string value into the
 * object option the user switches to (SSL modes: "prefer", then "Mode and
 * certificates").
 */
export function unspread(v) {
  if (Array.isArray(v)) return v.map(unspread);
  if (!v || typeof v !== 'object') return v;
  let n = 0;
  while (typeof v[n] === 'string' && v[n].length === 1) n += 1;
  const spread = (k) => n > 0 && /^\d+$/.test(k) && Number(k) < n;
  return Object.fromEntries(
    Object.keys(v)
      .filter((k) => !spread(k))
      .map((k) => [k, unspread(v[k])]),
  );
}

/** A spec's form: `onSubmit(config)`; children are its buttons. */
export function ConfigForm({ spec, config, onChange, onSubmit, children, id }) {
  const schema = spec || { type: 'object' };
  return (
    <Form
      id={id}
      schema={schema}
      uiSchema={{ ...uiSchemaOf(schema), 'ui:submitButtonOptions': { norender: true } }}
      formData={config}
      validator={validator}
      widgets={{ TextWidget: SecretAwareText, TextareaWidget: SecretAwareTextarea, PasswordWidget: Password }}
      onChange={(e) => onChange && onChange(unspread(e.formData))}
      onSubmit={(e) => onSubmit(unspread(e.formData))}
      showErrorList={false}
      noHtml5Validate
      liveOmit={false}
    >
      {children}
    </Form>
  );
}
